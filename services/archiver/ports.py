"""The archiver's ports: the weight store, its retention rules (cold storage's port is in
shared.coldstore)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from shared.manifest import Manifest
from shared.retention import RetentionPolicy


class WeightStore(Protocol):
    def get_manifest(self, digest: str) -> Manifest: ...
    def blob_path(self, sha256: str) -> Path: ...
    def revision_dir(self, manifest: Manifest) -> Path: ...
    def delete_revision(self, manifest: Manifest) -> tuple[int, int]: ...


class RetentionRules(Protocol):
    """The retention policies and legal holds in force (the archiver's own tables)."""

    async def policies(self) -> list[RetentionPolicy]: ...
    async def holds(self, adapter: str | None = None) -> set[tuple[str, str]]: ...
    async def hold_reason(self, adapter: str, revision: str) -> str | None: ...
