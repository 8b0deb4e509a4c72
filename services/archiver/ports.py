"""The archiver's ports: the weight store, its retention rules (cold storage's port is in
shared.coldstore)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from shared.artifacts import ChangedFile
from shared.manifest import Manifest
from shared.retention import RetentionPolicy


class WeightStore(Protocol):
    def get_manifest(self, digest: str) -> Manifest: ...
    def blob_path(self, sha256: str) -> Path: ...
    def revision_dir(self, manifest: Manifest) -> Path: ...
    def delete_revision(self, manifest: Manifest) -> tuple[int, int]: ...
    def verify_stored(self, manifest: Manifest) -> list[ChangedFile]: ...
    def stored_bytes(self, manifest: Manifest) -> int: ...


class RetentionRules(Protocol):
    """The retention policies and legal holds in force, and the answers to the commands that
    change them (the archiver's own tables)."""

    async def policies(self) -> list[RetentionPolicy]: ...
    async def holds(self, adapter: str | None = None) -> set[tuple[str, str]]: ...
    async def hold_reason(self, adapter: str, revision: str) -> str | None: ...
    async def save_policy(self, policy: RetentionPolicy, set_by: str) -> None: ...

    async def place_hold(self, adapter: str, revision: str, reason: str, placed_by: str) -> bool:
        """False when a hold is already in force there."""
        ...

    async def release_hold(
        self, adapter: str, revision: str, released_by: str, reason: str
    ) -> bool:
        """False when no hold is in force there."""
        ...

    async def outcome(self, cause_id: str) -> Mapping[str, Any] | None: ...

    async def record_outcome(self, answer: Mapping[str, Any]) -> None:
        """Record the answer to a command; the first under its id stands."""
        ...
