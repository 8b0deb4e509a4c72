"""A local-filesystem artifact source confined to allowed roots: no symlinks, bounded sizes."""

from __future__ import annotations

import os
import stat
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from services.ingest.ports import Limits, SourceFile, SourceRefused
from shared.findings import FindingCode


def _path_of(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        if parsed.netloc not in ("", "localhost"):
            raise SourceRefused(
                FindingCode.UNSUPPORTED_URI, f"file URI with host {parsed.netloc!r}"
            )
        return Path(unquote(parsed.path if parsed.scheme else uri))
    raise SourceRefused(
        FindingCode.UNSUPPORTED_URI,
        f"scheme {parsed.scheme!r} is not supported (file:// or a path)",
    )


class LocalDirectorySource:
    def __init__(self, allowed_roots: list[Path]) -> None:
        self.allowed_roots = [r.resolve() for r in allowed_roots]

    def _confine(self, uri: str) -> Path:
        raw = _path_of(uri)
        if not raw.is_absolute():
            raise SourceRefused(
                FindingCode.PATH_NOT_ABSOLUTE, f"artifact path {str(raw)!r} is relative"
            )
        # Normalise lexically first: '..' must not climb out, even through real folders.
        lexical = Path(os.path.normpath(raw))
        root = next((r for r in self.allowed_roots if lexical.is_relative_to(r)), None)
        if root is None or ".." in raw.parts:
            raise SourceRefused(
                FindingCode.PATH_ESCAPES_ROOT,
                f"artifact path {str(raw)!r} is outside the allowed roots",
                {"path": str(raw), "allowed_roots": ",".join(map(str, self.allowed_roots))},
            )
        current = root
        for part in lexical.relative_to(root).parts:
            current = current / part
            if current.is_symlink():
                raise SourceRefused(
                    FindingCode.SYMLINK, f"{current} is a symlink", {"path": str(current)}
                )
        if not lexical.is_dir():
            raise SourceRefused(FindingCode.SOURCE_MISSING, f"no artifact folder at {lexical}")
        return lexical

    def list_files(self, uri: str, limits: Limits) -> list[SourceFile]:
        folder = self._confine(uri)
        files: list[SourceFile] = []
        total = 0
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            for name in sorted(dirnames):
                if (Path(dirpath) / name).is_symlink():
                    raise SourceRefused(FindingCode.SYMLINK, f"{Path(dirpath) / name} is a symlink")
            for name in sorted(filenames):
                full = Path(dirpath) / name
                info = full.lstat()
                rel = full.relative_to(folder).as_posix()
                if stat.S_ISLNK(info.st_mode):
                    raise SourceRefused(FindingCode.SYMLINK, f"{rel} is a symlink", {"path": rel})
                if not stat.S_ISREG(info.st_mode):
                    raise SourceRefused(
                        FindingCode.NOT_A_REGULAR_FILE, f"{rel} is not a regular file"
                    )
                if info.st_size > limits.max_file_bytes:
                    raise SourceRefused(
                        FindingCode.FILE_TOO_LARGE,
                        f"{rel} is {info.st_size} bytes, above the {limits.max_file_bytes} bound",
                        {"path": rel, "size": str(info.st_size)},
                    )
                total += info.st_size
                files.append(SourceFile(rel, info.st_size, full))
        if len(files) > limits.max_files:
            raise SourceRefused(
                FindingCode.TOO_MANY_FILES, f"{len(files)} files, above {limits.max_files}"
            )
        if total > limits.max_total_bytes:
            raise SourceRefused(FindingCode.ARTIFACT_TOO_LARGE, f"{total} bytes in all")
        if not files:
            raise SourceRefused(FindingCode.SOURCE_EMPTY, f"no files under {folder}")
        return sorted(files, key=lambda f: f.path)

    def open(self, file: SourceFile) -> AbstractContextManager[BinaryIO]:
        path = file.opener
        assert isinstance(path, Path)
        # O_NOFOLLOW: a file swapped for a symlink after listing is still refused.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")
