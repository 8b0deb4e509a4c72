"""The local artifact source on a real filesystem: what it refuses besides paths outside
its roots. A hard link (a second name for a file living elsewhere, like a service's
private key), a file of another owner, a folder with too many entries; and a file swapped
for a hard link between listing and reading. Stored blobs are not world-readable."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from services.ingest.adapters import LocalDirectorySource
from services.ingest.ports import Limits, SourceRefused
from shared.artifacts import DIR_MODE, FILE_MODE, LocalArtifactStore
from shared.findings import FindingCode

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


def test_a_file_swapped_for_a_hard_link_after_listing_is_refused_when_opened(
    tmp_path: Path,
) -> None:
    root = tmp_path / "incoming"
    folder = drop(root)
    source = LocalDirectorySource([root])
    listed = {f.path: f for f in source.list_files(folder.as_uri(), Limits())}
    secret = tmp_path / "secret.key"
    secret.write_bytes(b"private")
    target = folder / "adapter_model.safetensors"
    target.unlink()
    os.link(secret, target)
    with pytest.raises(SourceRefused) as refused:
        source.open(listed["adapter_model.safetensors"])
    assert refused.value.code is FindingCode.HARD_LINK


def test_stored_blobs_and_manifest_folders_are_not_world_readable(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    entry = store.put_stream(io.BytesIO(b"weights"), max_bytes=1 << 10)
    assert stat.S_IMODE(store.blob_path(entry.sha256).stat().st_mode) == FILE_MODE == 0o440
    assert stat.S_IMODE((tmp_path / "store" / "blobs" / "sha256").stat().st_mode) == DIR_MODE
    assert not FILE_MODE & 0o007 and not DIR_MODE & 0o007
