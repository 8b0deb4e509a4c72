"""What ingest needs from the outside world: somewhere to read a trained adapter from, and
the registry's reads its API serves to trainers (their verdicts, the catalogue)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.findings import FindingCode
from shared.verdicts import Verdict


class SourceRefused(Exception):
    """The artifact cannot be ingested; becomes a rejection finding, never a crash."""

    def __init__(
        self, code: FindingCode, message: str, evidence: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.evidence = evidence or {}


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int = 8 << 30
    max_total_bytes: int = 32 << 30
    max_files: int = 256  # entries (files and folders) listed before a folder is refused
    # The uids a submitted file may belong to; empty: the owner of the allowed root it is in
    # (the training cluster's drop folder), so nobody else's file is taken as theirs.
    owners: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # relative, '/'-separated
    size: int
    opener: object = field(repr=False)  # () -> context manager yielding a BinaryIO


class ArtifactSource(Protocol):
    """Lists and opens a trained adapter's files; `file://` today, S3 behind the same port."""

    def list_files(self, uri: str, limits: Limits) -> list[SourceFile]: ...

    def open(self, file: SourceFile) -> AbstractContextManager[BinaryIO]: ...


class SubmissionReads(Protocol):
    """What ingest's API reads for a trainer: a submission's verdict and the catalogue."""

    async def verdict(self, event_id: str) -> Verdict | None:
        """The verdict of the submission `event_id` (the AdapterTrained's id); None while
        ingest has not handled it (or never will: unknown)."""
        ...

    async def base_models(self) -> list[BaseModelSpec]: ...

    async def environments(self) -> list[EnvironmentSpec]: ...
