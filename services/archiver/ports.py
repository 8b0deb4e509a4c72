"""What the archiver needs from the artifact store; cold storage's port is in shared.coldstore."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from shared.manifest import Manifest


class WeightStore(Protocol):
    def get_manifest(self, digest: str) -> Manifest: ...
    def blob_path(self, sha256: str) -> Path: ...
    def revision_dir(self, manifest: Manifest) -> Path: ...
    def delete_revision(self, manifest: Manifest) -> tuple[int, int]: ...
