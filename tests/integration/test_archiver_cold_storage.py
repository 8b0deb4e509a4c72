"""One contract for every cold storage backend (a directory; S3 through moto's standalone
server on loopback), and the archiver end to end with its archives in S3."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import boto3
import pytest

from services.archiver.handlers import sweep
from shared.coldstore import ArchiveConflict, ColdStorage, ColdStorageError, DirectoryColdStorage
from shared.coldstore.s3 import S3ColdStorage
from shared.lifecycle import State
from tests.conftest import Infra
from tests.eventually import eventually
from tests.integration.test_archiver import World, make_world
from tests.stack import Stack

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "archiver-test",
    "AWS_SECRET_ACCESS_KEY": "archiver-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server, started on loopback for this module and stopped after it."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if server.poll() is not None:
                raise ProcessLookupError(f"moto exited with {server.returncode}") from None
            return False

    eventually(listening, timeout=30, interval=0.1, message="moto listening")
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.terminate()
    server.wait(timeout=10)


def _bucket(endpoint: str, name: str) -> str:
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["directory", "s3"])
def cold(
    request: pytest.FixtureRequest, tmp_path: Path, unique: Callable[[str], str]
) -> ColdStorage:
    if request.param == "directory":
        return DirectoryColdStorage(tmp_path / "cold")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = _bucket(endpoint, unique("cold"))
    return S3ColdStorage.from_url(f"s3://{bucket}/archives", endpoint_url=endpoint)


def test_an_object_put_once_reads_back_at_its_uri(cold: ColdStorage) -> None:
    uri = cold.put("chat/sha256-ab.json", b"record")
    assert uri == cold.uri_for("chat/sha256-ab.json")
    assert cold.read(uri) == b"record"


def test_putting_the_same_bytes_again_is_harmless_and_other_bytes_are_refused(
    cold: ColdStorage,
) -> None:
    uri = cold.put("a/b.json", b"original")
    assert cold.put("a/b.json", b"original") == uri
    with pytest.raises(ArchiveConflict):
        cold.put("a/b.json", b"forged")
    assert cold.read(uri) == b"original"


def test_reading_a_uri_with_nothing_behind_it_is_an_error(cold: ColdStorage) -> None:
    with pytest.raises(ColdStorageError, match="no archive at"):
        cold.read(cold.uri_for("never/written.json"))


def test_a_key_that_would_leave_the_storage_root_is_refused(cold: ColdStorage) -> None:
    with pytest.raises(ColdStorageError, match="refused"):
        cold.put("../outside.json", b"x")


def _race(cold: ColdStorage, key: str, writers: int = 4) -> list[bytes]:
    """`writers` threads put different bytes under `key` at once: what each one got stored."""
    barrier, lock, stored = threading.Barrier(writers), threading.Lock(), []

    def write(data: bytes) -> None:
        barrier.wait()
        try:
            cold.put(key, data)
        except ArchiveConflict:
            data = b""
        with lock:
            stored.append(data)

    threads = [threading.Thread(target=write, args=(str(i).encode(),)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stored


def test_of_writers_racing_on_one_key_with_different_bytes_exactly_one_wins(
    cold: ColdStorage,
) -> None:
    for attempt in range(10):
        key = f"race/{attempt}.json"
        winners = [data for data in _race(cold, key) if data]
        assert len(winners) == 1, winners
        assert cold.read(cold.uri_for(key)) == winners[0]


@pytest.fixture(scope="module")
async def world(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str
) -> AsyncIterator[World]:
    stack = Stack(infra, tmp_path_factory.mktemp("archiver-s3"))
    await stack.create()
    world = await make_world(stack, stack.root)
    bucket = _bucket(s3_endpoint, f"cold-{stack.token}")
    world.cold = S3ColdStorage.from_url(f"s3://{bucket}/archives", endpoint_url=s3_endpoint)
    yield world
    await world.registry.close()


async def test_the_archiver_archives_to_s3_and_adapterctl_reads_the_record_back_from_there(
    world: World, unique: Callable[[str], str], s3_endpoint: str
) -> None:
    adapter, env = unique("s3"), unique("prod")
    await world.set_policy(env, keep=0)
    old, target, active = [await world.add(adapter) for _ in range(3)]
    for revision in (old, target, active):
        await world.activate(adapter, revision, env)

    report = await sweep(world.deps(), adapter)

    assert report.failed == {} and await world.state(adapter, old) is State.DELETED
    record = await world.archive_of(adapter, old)  # read back from S3 and verified
    assert record["revision"] == old
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "adapterctl"), "archive", "show", old,
         "--adapter", adapter, "--json"],
        env={**world.stack.env(), **CREDENTIALS, "COLD_STORAGE_S3_ENDPOINT": s3_endpoint},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"s3://{world.cold.bucket}/archives/{adapter}/" in shown.stdout  # type: ignore[attr-defined]
    assert '"verified": true' in shown.stdout
