"""The sweep waits out what it names and lets a bug through (ADR 0008): a revision whose
archive cannot be written or verified stays where it stands for the next sweep, the
others go on; any other exception propagates, and the timer waits out only outages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.archiver.deps import ArchiverDeps
from services.archiver.handlers import sweep
from services.archiver.main import SWEEP_OUTAGES, sweep_waiting_out_outages
from shared.artifacts import LocalArtifactStore
from shared.coldstore import ColdStorageError
from shared.events import RevisionExpired, RevisionRegistered
from shared.lifecycle import State
from shared.registry.memory import InMemoryRegistry
from tests.factories import lifecycle, to_validated


class NoRules:
    async def policies(self) -> list[Any]:
        return []

    async def holds(self, adapter: str | None = None) -> set[tuple[str, str]]:
        return set()

    async def hold_reason(self, adapter: str, revision: str) -> str | None:
        return None


class RaisingColdStorage:
    """Refuses every write with `error`, as a storage outage or a bug in a client would."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.puts = 0

    def uri_for(self, key: str) -> str:
        return f"mem://{key}"

    def put(self, key: str, data: bytes) -> str:
        self.puts += 1
        raise self.error

    def read(self, uri: str) -> bytes:
        raise AssertionError("not reached: nothing was written")


async def expired_deps(tmp_path: Path, cold: RaisingColdStorage) -> ArchiverDeps:
    registry = InMemoryRegistry()
    _, validated = to_validated("a", "r1")
    # No manifest: the archive is the events alone, so nothing but cold storage is asked.
    for event in (
        lifecycle(RevisionRegistered, "a", "r1", manifest_digest=""),
        validated,
        lifecycle(RevisionExpired, "a", "r1"),
    ):
        await registry.transition(event)
    return ArchiverDeps(
        registry=registry,
        rules=NoRules(),
        store=LocalArtifactStore(tmp_path),
        cold=cold,
    )


async def test_a_revision_whose_archive_cannot_be_written_waits_for_the_next_sweep(
    tmp_path: Path,
) -> None:
    cold = RaisingColdStorage(ColdStorageError("cold storage is away"))
    deps = await expired_deps(tmp_path, cold)
    first = await sweep(deps)
    second = await sweep(deps)
    assert first.failed == {("a", "r1"): "ColdStorageError: cold storage is away"}
    assert second.failed == first.failed and cold.puts == 2
    record = await deps.registry.revision("a", "r1")
    assert record is not None and record.status.revision_track is State.EXPIRED


async def test_a_bug_while_archiving_propagates_out_of_the_sweep(tmp_path: Path) -> None:
    deps = await expired_deps(tmp_path, RaisingColdStorage(KeyError("a bug of ours")))
    with pytest.raises(KeyError, match="a bug of ours"):
        await sweep(deps)


@pytest.mark.parametrize(
    "error", [ConnectionRefusedError("the database restarts"), ColdStorageError("away")]
)
async def test_the_sweep_timer_waits_out_an_outage(tmp_path: Path, error: Exception) -> None:
    assert isinstance(error, SWEEP_OUTAGES)
    deps = await expired_deps(tmp_path, RaisingColdStorage(ColdStorageError("away")))

    class AwayRegistry:
        async def snapshot(self, *args: Any, **kwargs: Any) -> Any:
            raise error

    deps.registry = AwayRegistry()  # type: ignore[assignment]
    await sweep_waiting_out_outages(deps)  # logged, not raised: the next tick retries


async def test_the_sweep_timer_lets_a_bug_crash_the_service(tmp_path: Path) -> None:
    deps = await expired_deps(tmp_path, RaisingColdStorage(TypeError("a bug of ours")))
    with pytest.raises(TypeError, match="a bug of ours"):
        await sweep_waiting_out_outages(deps)
