"""Cold storage in a directory: each object written once, durably, and never replaced."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from shared.coldstore.ports import ArchiveConflict, ColdStorageError, checked_key


class DirectoryColdStorage:
    """Objects are files under `root`; a URI is `file://` plus the file's absolute path."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def uri_for(self, key: str) -> str:
        return (self.root / checked_key(key)).as_uri()

    def put(self, key: str, data: bytes) -> str:
        path = self.root / checked_key(key)
        _make_dirs(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            try:
                # link(2), unlike rename(2), refuses an existing target: two writers racing
                # on one key cannot replace each other's object, and the name appears only
                # once the bytes are durable.
                os.link(tmp, path)
            except FileExistsError:
                if path.read_bytes() != data:
                    raise ArchiveConflict(
                        f"{path} already holds a different archive; refusing to replace it"
                    ) from None
            _fsync_dir(path.parent)
        finally:
            os.unlink(tmp)
        return path.as_uri()

    def read(self, uri: str) -> bytes:
        path = path_of(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ColdStorageError(f"no archive at {uri}") from None
        except OSError as exc:
            raise ColdStorageError(f"cannot read {uri}: {exc}") from exc


def path_of(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ColdStorageError(f"{uri!r} is not a local file:// URI")
    return Path(unquote(parsed.path))


def _make_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents, each made durable in its own parent."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir()
        except FileExistsError:
            continue  # another writer made it first
        _fsync_dir(created.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
