"""The local artifact source on a real filesystem: what it refuses besides paths outside
its roots. A hard link (a second name for a file living elsewhere, like a service's
private key), a file of another owner, a folder with too many entries; and a file swapped
for a hard link between listing and reading. Stored blobs are not world-readable."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from services.ingest.adapters import LocalDirectorySource
from services.ingest.ports import Limits, SourceRefused
from shared.artifacts import (
    DIR_MODE,
    FILE_MODE,
    SERVED_DIR_MODE,
    IntegrityError,
    LocalArtifactStore,
    folder_revision,
)
from shared.findings import FindingCode
from shared.manifest import FileEntry, Manifest, revision_digest

FILES = {"adapter_config.json": b"{}", "adapter_model.safetensors": b"weights"}


def drop(root: Path, name: str = "run-1") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for path, data in FILES.items():
        (folder / path).write_bytes(data)
    return folder


def hard_link_to_secret(folder: Path) -> None:
    secret = folder.parent.parent / "approval-signing.key"  # outside the allowed root
    secret.write_bytes(b"-----BEGIN PRIVATE KEY-----")
    os.link(secret, folder / "notes.txt")


def nested(folder: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "tokenizer.json").write_bytes(b"{}")


def emptied(folder: Path) -> None:
    for path in FILES:
        (folder / path).unlink()


@pytest.mark.parametrize(
    ("edit", "limits", "code", "in_message"),
    [
        (hard_link_to_secret, Limits(), FindingCode.HARD_LINK, "notes.txt has 2 links"),
        (
            lambda f: None,
            Limits(owners=frozenset({os.getuid() + 4242})),
            FindingCode.UNEXPECTED_OWNER,
            f"belongs to uid {os.getuid()}",
        ),
        (
            emptied,  # the folder itself is checked, not only what it holds
            Limits(owners=frozenset({os.getuid() + 4242})),
            FindingCode.UNEXPECTED_OWNER,
            f". belongs to uid {os.getuid()}",
        ),
        (nested, Limits(max_files=3), FindingCode.TOO_MANY_FILES, "more than 3 entries"),
    ],
)
def test_the_source_refuses_what_is_not_the_training_clusters_own_file(
    tmp_path: Path,
    edit: Callable[[Path], None],
    limits: Limits,
    code: FindingCode,
    in_message: str,
) -> None:
    root = tmp_path / "incoming"
    folder = drop(root)
    edit(folder)
    with pytest.raises(SourceRefused) as refused:
        LocalDirectorySource([root]).list_files(folder.as_uri(), limits)
    assert refused.value.code is code
    assert in_message in refused.value.message


def test_a_good_folder_lists_every_file_with_the_default_owner_and_limits(tmp_path: Path) -> None:
    root = tmp_path / "incoming"
    folder = drop(root)
    nested(folder)
    listed = LocalDirectorySource([root]).list_files(folder.as_uri(), Limits())
    assert [f.path for f in listed] == [*sorted(FILES), "sub/tokenizer.json"]


def test_listing_stops_at_the_bound_instead_of_reading_a_huge_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "incoming"
    folder = drop(root)
    for i in range(200):
        (folder / f"shard-{i:03}.bin").write_bytes(b"x")
    stats: list[str] = []
    source = LocalDirectorySource([root])
    original = os.scandir

    class Counting:
        def __init__(self, path: str) -> None:
            self.inner = original(path)

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

        def __iter__(self) -> Counting:
            return self

        def __next__(self) -> os.DirEntry[str]:
            entry = next(self.inner)
            stats.append(entry.name)
            return entry

    monkeypatch.setattr(os, "scandir", Counting)
    with pytest.raises(SourceRefused) as refused:
        source.list_files(folder.as_uri(), Limits(max_files=10))
    assert refused.value.code is FindingCode.TOO_MANY_FILES
    # Read up to the first entry past the bound, and no further.
    assert len(stats) == 11


def swap_for_hard_link(target: Path, elsewhere: Path) -> None:
    secret = elsewhere / "secret.key"
    secret.write_bytes(b"private")
    target.unlink()
    os.link(secret, target)


def swap_for_symlink(target: Path, elsewhere: Path) -> None:
    target.unlink()
    target.symlink_to(elsewhere)


def swap_for_pipe(target: Path, elsewhere: Path) -> None:
    target.unlink()
    os.mkfifo(target)  # opening it for reading would wait for a writer forever


def rewrite(target: Path, elsewhere: Path) -> None:
    replacement = target.with_name("replacement")
    replacement.write_bytes(b"other bytes")
    replacement.replace(target)  # one link, the drop folder's owner, another file


def swap_folder_for_symlink(target: Path, elsewhere: Path) -> None:
    """The file stays; a folder on its way becomes a symlink to a look-alike elsewhere."""
    lookalike = elsewhere / "keys"
    lookalike.mkdir()
    (lookalike / target.name).write_bytes(b"private")
    target.parent.rename(elsewhere / "moved")
    target.parent.symlink_to(lookalike)


@pytest.mark.parametrize(
    ("swap", "code"),
    [
        (swap_for_hard_link, FindingCode.HARD_LINK),
        (swap_for_symlink, FindingCode.SYMLINK),
        (swap_for_pipe, FindingCode.NOT_A_REGULAR_FILE),
        (rewrite, FindingCode.SOURCE_CHANGED),
        (swap_folder_for_symlink, FindingCode.SOURCE_CHANGED),
    ],
)
def test_a_file_swapped_after_listing_is_refused_when_opened(
    tmp_path: Path, swap: Callable[[Path, Path], None], code: FindingCode
) -> None:
    root = tmp_path / "incoming"
    folder = drop(root)
    nested(folder)
    source = LocalDirectorySource([root])
    listed = {f.path: f for f in source.list_files(folder.as_uri(), Limits())}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    swap(folder / "sub" / "tokenizer.json", elsewhere)
    with pytest.raises(SourceRefused) as refused:
        source.open(listed["sub/tokenizer.json"])
    assert refused.value.code is code
    assert refused.value.evidence["path"] == "sub/tokenizer.json"


def test_stored_blobs_and_manifest_folders_are_not_world_readable(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    entry = store.put_stream(io.BytesIO(b"weights"), max_bytes=1 << 10)
    assert stat.S_IMODE(store.blob_path(entry.sha256).stat().st_mode) == FILE_MODE == 0o440
    assert stat.S_IMODE((tmp_path / "store" / "blobs" / "sha256").stat().st_mode) == DIR_MODE
    assert not FILE_MODE & 0o007 and not DIR_MODE & 0o007


def stored_revision(store: LocalArtifactStore, content: bytes = b"weights") -> Manifest:
    entry = store.put_stream(io.BytesIO(content), max_bytes=1 << 10)
    files = (FileEntry(path="sub/adapter_model.safetensors", sha256=entry.sha256, size=7),)
    return Manifest(
        adapter="support-bot",
        revision=revision_digest(files),
        files=files,
        base_model_id="tiny",
        base_model_revision="b1",
        tokenizer_revision="tok",
        tokenizer_hash="sha256:" + "1" * 64,
        chat_template_hash="sha256:" + "2" * 64,
        quantization_profile="bf16",
        submitter="alice",
        trained_event_id="t",
        source_uri="file:///incoming/x",
    )


def test_a_revision_is_served_from_verified_read_only_copies_never_the_blobs(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    manifest = stored_revision(store)
    blob = store.blob_path(manifest.files[0].sha256)
    folder = store.materialize(manifest)
    loaded = folder / "sub" / "adapter_model.safetensors"
    assert loaded.read_bytes() == b"weights"
    assert loaded.stat().st_ino != blob.stat().st_ino  # a copy: the blob changing cannot reach it
    assert blob.stat().st_nlink == 2  # the store's own reference under links/
    assert stat.S_IMODE(loaded.stat().st_mode) == FILE_MODE
    assert stat.S_IMODE(loaded.parent.stat().st_mode) == SERVED_DIR_MODE
    assert stat.S_IMODE(folder.stat().st_mode) == SERVED_DIR_MODE
    assert folder_revision(folder) == manifest.revision
    assert store.materialize(manifest) == folder  # verified again, unchanged


def _overwrite(path: Path, content: bytes) -> None:
    """An insider with write access to the disk changes a file in place."""
    path.chmod(0o640)
    path.write_bytes(content)


@pytest.mark.parametrize("where", ["blob before first use", "served copy"])
def test_bytes_changed_on_disk_are_caught_at_the_next_use_by_name(
    tmp_path: Path, where: str
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    manifest = stored_revision(store)
    blob = store.blob_path(manifest.files[0].sha256)
    if where == "blob before first use":
        _overwrite(blob, b"WEIGHTS")
    else:
        folder = store.materialize(manifest)
        _overwrite(folder / "sub" / "adapter_model.safetensors", b"WEIGHTS")
    with pytest.raises(IntegrityError) as caught:
        store.materialize(manifest)
    [changed] = caught.value.problems
    assert changed.path == "sub/adapter_model.safetensors" and changed.where == (
        "stored blob" if where.startswith("blob") else "served copy"
    )
    assert changed.found == (hashlib.sha256(b"WEIGHTS").hexdigest(), 7)
    assert store.verify_stored(manifest) == [changed]
    assert manifest.files[0].sha256[:16] in str(caught.value)
    served = store.revision_dir(manifest) / "sub" / "adapter_model.safetensors"
    assert not served.exists() or where == "served copy"  # a bad copy is never placed


def test_deleting_a_revision_keeps_a_blob_another_revision_still_references(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    first = stored_revision(store)
    second = dataclasses.replace(first, adapter="other-bot")
    store.materialize(first)
    store.materialize(second)
    blob = store.blob_path(first.files[0].sha256)
    assert store.delete_revision(first) == (0, 0) and blob.exists()
    assert store.delete_revision(second) == (1, 7) and not blob.exists()


def test_a_served_folder_named_by_its_revision_proves_its_own_bytes_at_load(
    tmp_path: Path,
) -> None:
    """What the reference server checks before PEFT reads a byte (it has no manifest)."""
    from services.reference_server.engine import LoadRefused, _verify_revision_folder

    store = LocalArtifactStore(tmp_path / "store")
    manifest = stored_revision(store)
    folder = store.materialize(manifest)
    _verify_revision_folder(folder)  # intact: loads
    _overwrite(folder / "sub" / "adapter_model.safetensors", b"WEIGHTS")
    with pytest.raises(LoadRefused, match="changed after the revision was recorded") as refused:
        _verify_revision_folder(folder)
    assert refused.value.status == 400
    _verify_revision_folder(tmp_path)  # a hand-made folder, not named by a digest: not held
