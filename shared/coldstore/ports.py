"""The cold storage port: a write-once home for archive records, addressed by URI."""

from __future__ import annotations

from typing import Protocol

from shared.artifacts import StoreError, safe_relative


class ColdStorageError(Exception):
    """Cold storage refused or failed an operation; the message says which and why."""


class ArchiveConflict(ColdStorageError):
    """An object with other bytes already sits under the key: archives are never replaced."""


class ColdStorage(Protocol):
    def uri_for(self, key: str) -> str:
        """Where `key` lives (or would live), as a URI `read` accepts."""

    def put(self, key: str, data: bytes) -> str:
        """Store `data` under `key` once and return its URI.

        The same bytes again return the same URI (a retried write is harmless); other
        bytes under an existing key raise ArchiveConflict and change nothing.
        """

    def read(self, uri: str) -> bytes:
        """The bytes stored at `uri`; ColdStorageError when there are none."""


def checked_key(key: str) -> str:
    """A relative '/'-separated key that cannot leave the storage root, or ColdStorageError."""
    try:
        return safe_relative(key).as_posix()
    except StoreError as exc:
        raise ColdStorageError(f"archive key {key!r} refused: {exc}") from exc
