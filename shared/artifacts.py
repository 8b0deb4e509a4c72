"""The artifact store: content-addressed, write-once blobs and manifests on a filesystem.

Layout under the root:
    blobs/sha256/<hex>                      every file, by the SHA-256 of its bytes
    manifests/sha256/<hex>.json             every manifest, by its digest
    revisions/<adapter>/<revision hex>/...  a revision's files as hard links (loadable)
Only ingest writes and only the archiver deletes; blobs are never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from shared.manifest import FileEntry, Manifest

CHUNK = 1 << 20


class StoreError(Exception):
    """A path or object the store refuses, with the reason."""


class ArtifactStore(Protocol):
    def put_stream(self, stream: BinaryIO, *, max_bytes: int) -> FileEntry: ...
    def put_manifest(self, manifest: Manifest) -> str: ...
    def get_manifest(self, digest: str) -> Manifest: ...
    def blob_path(self, sha256: str) -> Path: ...
    def materialize(self, manifest: Manifest) -> Path: ...
    def delete_revision(self, manifest: Manifest) -> tuple[int, int]: ...


def safe_relative(path: str) -> PurePosixPath:
    """A relative path that cannot leave its root, or StoreError."""
    p = PurePosixPath(path)
    if p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts):
        raise StoreError(f"path {path!r} escapes its root")
    return p


def hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# Stored bytes are write-once and readable only by the store's owner and group (the
# services, and the replicas that load revisions), never by every account on the host.
FILE_MODE = 0o440
DIR_MODE = 0o750


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("blobs/sha256", "manifests/sha256", "revisions", "tmp"):
            (root / sub).mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise StoreError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / "blobs" / "sha256" / sha256

    def put_stream(self, stream: BinaryIO, *, max_bytes: int) -> FileEntry:
        """Copy a stream in chunks while hashing it; never holds the file in memory."""
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StoreError(f"file exceeds the {max_bytes}-byte bound")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            target = self.blob_path(digest.hexdigest())
            if target.exists():
                os.unlink(tmp)  # same content already stored: write-once
            else:
                os.chmod(tmp, FILE_MODE)
                os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return FileEntry(path="", sha256=digest.hexdigest(), size=size)

    def _manifest_path(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        self.blob_path(hexpart)  # validates the hex
        return self.root / "manifests" / "sha256" / f"{hexpart}.json"

    def put_manifest(self, manifest: Manifest) -> str:
        digest = manifest.digest
        path = self._manifest_path(digest)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(manifest.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, path)
        return digest

    def get_manifest(self, digest: str) -> Manifest:
        path = self._manifest_path(digest)
        if not path.exists():
            raise StoreError(f"no manifest {digest}")
        data = path.read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"manifest {digest} does not match its digest")
        return Manifest.from_json(data)

    def revision_dir(self, manifest: Manifest) -> Path:
        return (
            self.root
            / "revisions"
            / safe_relative(manifest.adapter).as_posix()
            / (manifest.revision.removeprefix("sha256:"))
        )

    def materialize(self, manifest: Manifest) -> Path:
        """The revision as a folder a serving stack can load (hard links to the blobs)."""
        folder = self.revision_dir(manifest)
        for entry in manifest.files:
            target = folder / safe_relative(entry.path)
            if not target.exists():
                target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                os.link(self.blob_path(entry.sha256), target)
        return folder

    def iter_files(self, manifest: Manifest) -> Iterator[tuple[FileEntry, Path]]:
        for entry in manifest.files:
            yield entry, self.blob_path(entry.sha256)

    def delete_revision(self, manifest: Manifest) -> tuple[int, int]:
        """Delete the revision's folder and every blob no other revision links; (files, bytes)."""
        shutil.rmtree(self.revision_dir(manifest), ignore_errors=True)
        files = freed = 0
        for entry in manifest.files:
            blob = self.blob_path(entry.sha256)
            # st_nlink == 1: no materialised revision still links this blob.
            if blob.exists() and blob.stat().st_nlink == 1:
                freed += blob.stat().st_size
                blob.unlink()
                files += 1
        return files, freed
