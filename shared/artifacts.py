"""The artifact store: content-addressed, write-once blobs and manifests on a filesystem.

Layout under the root:
    blobs/sha256/<hex>                      every file, by the SHA-256 of its bytes
    manifests/sha256/<hex>.json             every manifest, by its digest
    links/<adapter>/<revision hex>/...      a revision's files as hard links to the blobs
                                            (what keeps a shared blob alive on deletion)
    revisions/<adapter>/<revision hex>/...  a revision's files as verified, read-only copies:
                                            what evaluators and replicas load
Only ingest writes and only the archiver deletes; blobs are never overwritten.

A digest means something only where the bytes are used: `materialize` (every reader's
way to a loadable folder) copies each blob while hashing it and refuses one that no
longer matches the manifest, then re-hashes the folder on every later call, so a blob or
a served copy changed on disk after it was judged is caught at its next use
(`IntegrityError`, naming each file). Served copies are separate inodes: changing a blob
in place cannot reach a folder a replica already loads from.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from shared.manifest import FileEntry, Manifest, revision_digest

CHUNK = 1 << 20


class StoreError(Exception):
    """A path or object the store refuses, with the reason."""


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One file whose stored bytes differ from the manifest, and where they were read."""

    path: str
    where: str  # "stored blob" or "served copy"
    expected: tuple[str, int]  # (sha256 hex, size) per the manifest
    found: tuple[str, int]

    def __str__(self) -> str:
        return (
            f"{self.path}: the {self.where} hashes to {self.found[0][:16]} ({self.found[1]} "
            f"bytes), the manifest says {self.expected[0][:16]} ({self.expected[1]} bytes)"
        )


class IntegrityError(StoreError):
    """Stored bytes that no longer hash to what the manifest recorded: one entry per file."""

    def __init__(self, manifest: Manifest, problems: list[ChangedFile]) -> None:
        self.problems = problems
        super().__init__(
            f"{manifest.adapter}@{manifest.revision}: stored bytes changed after they were "
            "recorded: " + "; ".join(map(str, problems))
        )


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
SERVED_DIR_MODE = 0o550  # a served revision's folders: nothing is added or replaced


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("blobs/sha256", "manifests/sha256", "links", "revisions", "tmp"):
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
        """Where the revision's verified copies are served from."""
        return self._folder("revisions", manifest)

    def _folder(self, kind: str, manifest: Manifest) -> Path:
        hexpart = manifest.revision.removeprefix("sha256:")
        return self.root / kind / safe_relative(manifest.adapter).as_posix() / hexpart

    def materialize(self, manifest: Manifest) -> Path:
        """The revision as a folder a serving stack can load, every byte verified now.

        First use: each blob is hard-linked under `links/` (the store's reference) and
        copied under `revisions/` while being hashed. Later uses re-hash the copies. Any
        file that does not hash to the manifest raises IntegrityError; nothing changed on
        disk is ever handed out, and a bad copy is never placed.
        """
        links = self._folder("links", manifest)
        folder = self.revision_dir(manifest)
        problems: list[ChangedFile] = []
        lock = self.root / "tmp" / f"{manifest.revision.removeprefix('sha256:')}.lock"
        with lock.open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # one writer per revision across processes
            _unseal_folders(folder, recursive=True)
            try:
                for entry in manifest.files:
                    relative = safe_relative(entry.path)
                    link = links / relative
                    if not link.exists():
                        link.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                        os.link(self.blob_path(entry.sha256), link)
                    target = folder / relative
                    if target.exists() and not _same_file(target, link):
                        found, where = hash_file(target), "served copy"
                    else:
                        found, where = _copy_if(link, target, entry), "stored blob"
                    expected = (entry.sha256, entry.size)
                    if found != expected:
                        problems.append(ChangedFile(entry.path, where, expected, found))
            finally:
                if folder.exists():
                    _seal_folders(folder)
        if problems:
            raise IntegrityError(manifest, problems)
        return folder

    def verify_stored(self, manifest: Manifest) -> list[ChangedFile]:
        """Re-hash the revision's blobs and any served copies against the manifest, changing
        nothing on disk: the scrubber's and the archiver's check. A missing blob is a change."""
        changed = []
        folder = self.revision_dir(manifest)
        for entry in manifest.files:
            expected = (entry.sha256, entry.size)
            blob = self.blob_path(entry.sha256)
            found = hash_file(blob) if blob.exists() else ("missing", 0)
            if found != expected:
                changed.append(ChangedFile(entry.path, "stored blob", expected, found))
            served = folder / safe_relative(entry.path)
            if served.exists() and not _same_file(served, blob):
                found = hash_file(served)
                if found != expected:
                    changed.append(ChangedFile(entry.path, "served copy", expected, found))
        return changed

    def stored_bytes(self, manifest: Manifest) -> int:
        """What `verify_stored` reads: each blob, and each served copy."""
        served = self.revision_dir(manifest).exists()
        return sum(f.size for f in manifest.files) * (2 if served else 1)

    def iter_files(self, manifest: Manifest) -> Iterator[tuple[FileEntry, Path]]:
        for entry in manifest.files:
            yield entry, self.blob_path(entry.sha256)

    def delete_revision(self, manifest: Manifest) -> tuple[int, int]:
        """Delete the revision's folders and every blob no other revision links; (files, bytes)."""
        for folder in (self.revision_dir(manifest), self._folder("links", manifest)):
            _unseal_folders(folder, recursive=True)
            shutil.rmtree(folder, ignore_errors=True)
        files = freed = 0
        for entry in manifest.files:
            blob = self.blob_path(entry.sha256)
            # st_nlink == 1: no materialised revision still links this blob.
            if blob.exists() and blob.stat().st_nlink == 1:
                freed += blob.stat().st_size
                blob.unlink()
                files += 1
        return files, freed


def _copy_if(source: Path, target: Path, entry: FileEntry) -> tuple[str, int]:
    """Copy `source` to `target` while hashing; placed only when it hashes to `entry`."""
    target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if (digest.hexdigest(), size) == (entry.sha256, entry.size):
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest.hexdigest(), size


def folder_revision(folder: Path) -> str:
    """The revision id the files under `folder` make (`manifest.revision_digest`): a served
    folder named by its revision proves its own bytes, with no manifest at hand."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".incoming-"):
            digest, size = hash_file(path)
            entries.append(
                FileEntry(path=path.relative_to(folder).as_posix(), sha256=digest, size=size)
            )
    return revision_digest(entries)


def _same_file(a: Path, b: Path) -> bool:
    """True when both names are one inode (a served folder made before copies were)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _seal_folders(folder: Path) -> None:
    """The served folder and its subfolders read-only: no file can be added or replaced."""
    for sub in sorted(folder.rglob("*"), reverse=True):
        if sub.is_dir():
            os.chmod(sub, SERVED_DIR_MODE)
    os.chmod(folder, SERVED_DIR_MODE)


def _unseal_folders(folder: Path, *, recursive: bool = False) -> None:
    """Writable again for the store itself (a new copy, or deletion)."""
    if not folder.exists():
        return
    os.chmod(folder, DIR_MODE)
    if recursive:
        for sub in folder.rglob("*"):
            if sub.is_dir():
                os.chmod(sub, DIR_MODE)
