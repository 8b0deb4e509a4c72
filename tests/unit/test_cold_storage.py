"""Cold storage in a directory: durable, write-once, idempotent for the same bytes."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from shared.coldstore import (
    ArchiveConflict,
    ColdStorageError,
    ColdStorageSettings,
    DirectoryColdStorage,
    open_cold_storage,
    read_archive,
)
from shared.coldstore.s3 import S3ColdStorage


def test_an_object_is_readable_at_the_uri_put_returns_and_cannot_be_written_to(
    tmp_path: Path,
) -> None:
    cold = DirectoryColdStorage(tmp_path / "cold")
    uri = cold.put("chat/sha256-ab.json", b"record")
    assert (
        uri
        == (tmp_path / "cold" / "chat" / "sha256-ab.json").as_uri()
        == cold.uri_for("chat/sha256-ab.json")
    )
    assert cold.read(uri) == b"record"
    mode = (tmp_path / "cold" / "chat" / "sha256-ab.json").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_writing_the_same_bytes_again_returns_the_same_uri_and_leaves_no_temp_files(
    tmp_path: Path,
) -> None:
    cold = DirectoryColdStorage(tmp_path)
    first = cold.put("a/b.json", b"same")
    assert cold.put("a/b.json", b"same") == first
    assert sorted(os.listdir(tmp_path / "a")) == ["b.json"]


def test_other_bytes_under_an_existing_key_are_refused_and_the_original_stays(
    tmp_path: Path,
) -> None:
    cold = DirectoryColdStorage(tmp_path)
    uri = cold.put("a/b.json", b"original")
    with pytest.raises(ArchiveConflict, match="refusing to replace"):
        cold.put("a/b.json", b"forged")
    assert cold.read(uri) == b"original"
    assert sorted(os.listdir(tmp_path / "a")) == ["b.json"]


@pytest.mark.parametrize("key", ["../escape.json", "/etc/passwd", "a/../../b", ""])
def test_a_key_that_would_leave_the_root_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ColdStorageError, match="refused"):
        DirectoryColdStorage(tmp_path / "cold").put(key, b"x")
    assert not (tmp_path / "escape.json").exists()


def test_reading_what_was_never_written_is_an_error_naming_the_uri(tmp_path: Path) -> None:
    uri = (tmp_path / "nothing.json").as_uri()
    with pytest.raises(ColdStorageError, match="no archive at"):
        DirectoryColdStorage(tmp_path).read(uri)


def _race(cold: DirectoryColdStorage, key: str) -> dict[bytes, str]:
    """Two threads put different bytes under `key` at the same moment: who won, who was refused."""
    barrier = threading.Barrier(2)
    outcomes: dict[bytes, str] = {}

    def write(data: bytes) -> None:
        barrier.wait()
        try:
            cold.put(key, data)
            outcomes[data] = "won"
        except ArchiveConflict:
            outcomes[data] = "refused"

    threads = [threading.Thread(target=write, args=(d,)) for d in (b"one", b"two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_of_two_writers_racing_with_different_bytes_exactly_one_wins(tmp_path: Path) -> None:
    cold = DirectoryColdStorage(tmp_path)
    for attempt in range(20):
        key = f"race/{attempt}.json"
        outcomes = _race(cold, key)
        assert sorted(outcomes.values()) == ["refused", "won"]
        winner = next(d for d, o in outcomes.items() if o == "won")
        assert (tmp_path / key).read_bytes() == winner


def test_the_settings_choose_the_backend_by_url(tmp_path: Path) -> None:
    by_path = open_cold_storage(ColdStorageSettings(url=str(tmp_path / "p")))
    by_uri = open_cold_storage(ColdStorageSettings(url=(tmp_path / "u").as_uri()))
    s3 = open_cold_storage(
        ColdStorageSettings(url="s3://bucket/pre/fix", s3_endpoint="http://127.0.0.1:1")
    )
    assert isinstance(by_path, DirectoryColdStorage) and by_path.root == tmp_path / "p"
    assert isinstance(by_uri, DirectoryColdStorage) and by_uri.root == tmp_path / "u"
    assert (
        isinstance(s3, S3ColdStorage) and s3.uri_for("a/b.json") == "s3://bucket/pre/fix/a/b.json"
    )
    with pytest.raises(ColdStorageError, match="use a directory"):
        open_cold_storage(ColdStorageSettings(url="ftp://host/x"))


def test_settings_come_from_the_environment_with_a_directory_by_default() -> None:
    assert ColdStorageSettings.from_env({}).url == "var/cold"
    settings = ColdStorageSettings.from_env(
        {
            "COLD_STORAGE_URL": "s3://cold/archives",
            "COLD_STORAGE_S3_ENDPOINT": "http://minio:9000",
            "COLD_STORAGE_S3_REGION": "eu-central-1",
        }
    )
    assert (settings.url, settings.s3_endpoint, settings.s3_region) == (
        "s3://cold/archives",
        "http://minio:9000",
        "eu-central-1",
    )


def test_an_archive_uri_is_read_from_the_backend_it_names(tmp_path: Path) -> None:
    uri = DirectoryColdStorage(tmp_path / "elsewhere").put("x/y.json", b"bytes")
    assert read_archive(ColdStorageSettings(url=str(tmp_path / "configured")), uri) == b"bytes"
