"""Content digests of model and adapter folders: the kit's revisions."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digest_folder(folder: Path) -> str:
    """sha256 over every file, in sorted relative-path order, each framed by name and size."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def digest_files(folder: Path) -> dict[str, str]:
    """Each file's own sha256, by relative path; what a determinism check compares."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    }
