"""A local-filesystem artifact source confined to allowed roots: no symlinks, no hard
links, no file of another owner, bounded sizes and entry counts.

A hard link is a second name for a file that lives elsewhere (a service's private key, say):
inside an allowed root it looks like any regular file, so every regular file with more
than one link is refused, and so is one whose owner is not the drop folder's (or one of
`INGEST_ALLOWED_OWNERS`). Both are checked when listing and again on the open descriptor,
which must also be the very file listed, so a file swapped after listing is refused too."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
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

    def _confine(self, uri: str) -> tuple[Path, Path]:
        """The artifact folder, and the allowed root it is in."""
        raw = _path_of(uri)
        if not raw.is_absolute():
            raise SourceRefused(
                FindingCode.PATH_NOT_ABSOLUTE, f"artifact path {str(raw)!r} is relative"
            )
        # Normalise lexically first: '..' must not climb out, even through real folders.
        lexical = Path(os.path.normpath(raw))
        root = next((r for r in self.allowed_roots if lexical.is_relative_to(r)), None)
        roots = ",".join(map(str, self.allowed_roots))
        if root is None:
            raise SourceRefused(
                FindingCode.PATH_ESCAPES_ROOT,
                f"artifact path {str(raw)!r} is outside the allowed roots ({roots})",
                {"path": str(raw), "allowed_roots": roots},
            )
        if ".." in raw.parts:
            # Inside a root once normalised, but '..' may climb through a symlinked folder
            # that normalising cannot see: refused, and said as it is.
            raise SourceRefused(
                FindingCode.PATH_ESCAPES_ROOT,
                f"artifact path {str(raw)!r} contains '..' components; give the path "
                f"without them (e.g. {str(lexical)!r})",
                {"path": str(raw), "normalised": str(lexical), "allowed_roots": roots},
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
        return lexical, root

    def list_files(self, uri: str, limits: Limits) -> list[SourceFile]:
        folder, root = self._confine(uri)
        owners = limits.owners or frozenset({root.stat().st_uid})
        _check_owner("", folder.lstat(), owners)  # its owner could swap what it holds
        files: list[SourceFile] = []
        total = 0
        for full, info in _entries(folder, limits.max_files):
            rel = full.relative_to(folder).as_posix()
            if stat.S_ISLNK(info.st_mode):
                raise SourceRefused(FindingCode.SYMLINK, f"{rel} is a symlink", {"path": rel})
            _check_owner(rel, info, owners)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise SourceRefused(
                    FindingCode.NOT_A_REGULAR_FILE, f"{rel} is not a regular file", {"path": rel}
                )
            _check_links(rel, info)
            if info.st_size > limits.max_file_bytes:
                raise SourceRefused(
                    FindingCode.FILE_TOO_LARGE,
                    f"{rel} is {info.st_size} bytes, above the {limits.max_file_bytes} bound",
                    {"path": rel, "size": str(info.st_size)},
                )
            total += info.st_size
            opener = _Opener(full, rel, owners, (info.st_dev, info.st_ino))
            files.append(SourceFile(rel, info.st_size, opener))
        if total > limits.max_total_bytes:
            raise SourceRefused(FindingCode.ARTIFACT_TOO_LARGE, f"{total} bytes in all")
        if not files:
            raise SourceRefused(FindingCode.SOURCE_EMPTY, f"no files under {folder}")
        return sorted(files, key=lambda f: f.path)

    def open(self, file: SourceFile) -> AbstractContextManager[BinaryIO]:
        opener = file.opener
        assert isinstance(opener, _Opener)
        # O_NOFOLLOW: a file swapped for a symlink after listing is refused (O_NONBLOCK: one
        # swapped for a named pipe cannot hang the open); the checks on the descriptor
        # refuse one swapped for a hard link, another's file or any other file.
        try:
            fd = os.open(opener.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise SourceRefused(
                FindingCode.SYMLINK, f"{opener.rel} is a symlink", {"path": opener.rel}
            ) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SourceRefused(
                    FindingCode.NOT_A_REGULAR_FILE,
                    f"{opener.rel} is not a regular file",
                    {"path": opener.rel},
                )
            _check_links(opener.rel, info)
            _check_owner(opener.rel, info, opener.owners)
            if (info.st_dev, info.st_ino) != opener.identity:
                # Another file now answers to the listed path (a folder on the way swapped
                # for a symlink, say): read only what was listed inside the drop folder.
                raise SourceRefused(
                    FindingCode.SOURCE_CHANGED,
                    f"{opener.rel} is another file than the one listed",
                    {"path": opener.rel},
                )
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb")


@dataclass(frozen=True, slots=True)
class _Opener:
    path: Path
    rel: str
    owners: frozenset[int]
    identity: tuple[int, int]  # (st_dev, st_ino) when listed


def _entries(folder: Path, max_entries: int) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry under `folder` (files and folders, symlinks not followed), in no order;
    TOO_MANY_FILES as soon as more than `max_entries` are seen, not after listing them all."""
    seen = 0
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as scan:  # lazily: a huge folder is never read whole
            for entry in scan:
                seen += 1
                if seen > max_entries:
                    raise SourceRefused(
                        FindingCode.TOO_MANY_FILES,
                        f"more than {max_entries} entries under {folder}",
                        {"max_files": str(max_entries)},
                    )
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(Path(entry.path))
                yield Path(entry.path), info


def _check_links(rel: str, info: os.stat_result) -> None:
    if info.st_nlink > 1:
        raise SourceRefused(
            FindingCode.HARD_LINK,
            f"{rel} has {info.st_nlink} links: a hard link names a file that lives elsewhere",
            {"path": rel, "links": str(info.st_nlink)},
        )


def _check_owner(rel: str, info: os.stat_result, owners: frozenset[int]) -> None:
    if info.st_uid not in owners:
        allowed = ",".join(map(str, sorted(owners)))
        raise SourceRefused(
            FindingCode.UNEXPECTED_OWNER,
            f"{rel or '.'} belongs to uid {info.st_uid}, not the drop folder's ({allowed})",
            {"path": rel, "uid": str(info.st_uid), "owners": allowed},
        )
