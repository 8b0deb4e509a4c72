"""The manifest: binds a revision's exact files to the base, tokenizer, template and
quantization it was trained for, like an image digest binds a container's layers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    path: str  # relative, '/'-separated, inside the revision
    sha256: str  # hex
    size: int


def revision_digest(files: Iterable[FileEntry]) -> str:
    """The revision id: SHA-256 over the sorted (sha256, size, path) list.

    Same bytes under the same names give the same id wherever they were trained or
    stored, so a resubmission is recognised and a changed byte is a new revision.
    """
    lines = sorted(f"{f.sha256} {f.size} {f.path}" for f in files)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    adapter: str
    revision: str
    files: tuple[FileEntry, ...]
    base_model_id: str
    base_model_revision: str
    tokenizer_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str
    target_environments: tuple[str, ...] = ()
    recipe: Mapping[str, Any] = field(default_factory=dict)
    data_scope: Mapping[str, Any] = field(default_factory=dict)
    submitter: str
    trained_event_id: str
    source_uri: str

    def to_json(self) -> bytes:
        """Canonical bytes (sorted keys, no whitespace variance): the manifest's digest input."""
        body = asdict(self)
        body["files"] = sorted(body["files"], key=lambda f: f["path"])
        body["schema"] = "adapters.manifest.v1"
        return json.dumps(body, sort_keys=True, indent=1, ensure_ascii=True).encode() + b"\n"

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.to_json()).hexdigest()

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        if body.pop("schema", None) != "adapters.manifest.v1":
            raise ValueError("not an adapters.manifest.v1 document")
        body["files"] = tuple(FileEntry(**f) for f in body["files"])
        body["target_environments"] = tuple(body.get("target_environments", ()))
        return cls(**body)
