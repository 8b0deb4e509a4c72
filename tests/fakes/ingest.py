"""Fakes for ingest: an artifact source held in memory, and trained events to submit."""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, cast

from services.ingest.ports import Limits, SourceFile, SourceRefused
from shared.events import AdapterTrained
from shared.findings import FindingCode
from tests.samples import sample


class InMemorySource:
    """Fakes `services.ingest.ports.ArtifactSource`: URIs name folders of bytes in memory."""

    def __init__(self, folders: Mapping[str, Mapping[str, bytes]] | None = None) -> None:
        self.folders: dict[str, dict[str, bytes]] = {
            uri: dict(files) for uri, files in (folders or {}).items()
        }
        self.opened: list[str] = []  # every file read, in order

    def add(self, uri: str, files: Mapping[str, bytes]) -> str:
        self.folders[uri] = dict(files)
        return uri

    def list_files(self, uri: str, limits: Limits) -> list[SourceFile]:
        files = self.folders.get(uri)
        if files is None:
            raise SourceRefused(FindingCode.SOURCE_MISSING, f"no artifact folder at {uri}")
        if not files:
            raise SourceRefused(FindingCode.SOURCE_EMPTY, f"no files under {uri}")
        for path, data in files.items():
            if len(data) > limits.max_file_bytes:
                raise SourceRefused(
                    FindingCode.FILE_TOO_LARGE,
                    f"{path} is {len(data)} bytes, above the {limits.max_file_bytes} bound",
                    {"path": path, "size": str(len(data))},
                )
        return [SourceFile(path, len(data), (uri, path)) for path, data in sorted(files.items())]

    def open(self, file: SourceFile) -> AbstractContextManager[BinaryIO]:
        uri, path = cast(tuple[str, str], file.opener)
        self.opened.append(path)
        return io.BytesIO(self.folders[uri][path])


def trained(adapter: str, artifact_uri: str, **changes: Any) -> AdapterTrained:
    """A sample `AdapterTrained` for `adapter` at `artifact_uri`, with a fresh event id."""
    fields: dict[str, Any] = {"event_id": str(uuid.uuid4()), "adapter": adapter}
    return dataclasses.replace(
        sample(AdapterTrained), **(fields | changes), artifact_uri=artifact_uri
    )
