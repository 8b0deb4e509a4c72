"""Check re-supplied weights against the hashes an archive record keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from shared.artifacts import hash_file
from shared.manifest import FileEntry


@dataclass(frozen=True, slots=True)
class WeightsCheck:
    matched: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "path: why"
    missing: list[str] = field(default_factory=list)  # archived, not supplied
    extra: list[str] = field(default_factory=list)  # supplied, not archived

    @property
    def ok(self) -> bool:
        return bool(self.matched) and not (self.mismatched or self.missing or self.extra)


def check_weights(files: Sequence[FileEntry], path: Path) -> WeightsCheck:
    """A folder must hold exactly the archived files, byte for byte; a single file must
    match the archived file of the same name (or, failing a name match, any archived file)."""
    check = WeightsCheck()
    if path.is_file():
        digest, size = hash_file(path)
        named = [f for f in files if PurePosixPath(f.path).name == path.name] or list(files)
        hit = next((f for f in named if (f.sha256, f.size) == (digest, size)), None)
        if hit is not None:
            check.matched.append(hit.path)
        else:
            check.mismatched.append(f"{path.name}: sha256 {digest} matches no archived file")
        return check
    if not path.is_dir():
        check.missing.extend(f.path for f in files)
        return check
    for entry in files:
        supplied = path / entry.path
        if not supplied.is_file():
            check.missing.append(entry.path)
            continue
        digest, size = hash_file(supplied)
        if (digest, size) == (entry.sha256, entry.size):
            check.matched.append(entry.path)
        else:
            check.mismatched.append(
                f"{entry.path}: sha256 {digest} ({size} bytes), archived {entry.sha256} "
                f"({entry.size} bytes)"
            )
    archived = {f.path for f in files}
    check.extra.extend(
        sorted(
            p.relative_to(path).as_posix()
            for p in path.rglob("*")
            if p.is_file() and p.relative_to(path).as_posix() not in archived
        )
    )
    return check
