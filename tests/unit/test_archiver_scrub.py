# ruff: noqa: F811
"""The scrubber re-hashes the store a bounded share per tick, quarantines (once) a revision
whose bytes changed at rest, counts its progress, and leaves the rest alone."""

from __future__ import annotations

import os

from structlog.testing import capture_logs

from services.archiver.scrub import ScrubCursor, next_batch, scrub_tick
from shared.events import RevisionQuarantined, RevisionRolledBack
from shared.lifecycle import State
from shared.observability import Metrics
from tests.factories import lifecycle
from tests.unit.test_archiver_handlers import (
    ADAPTER,
    World,
    activated,
    expired,
    rejected,
    world,  # noqa: F401 (the fixture; its parameters shadow it: F811 below)
)


def tamper(path: os.PathLike[str]) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(b"X")


async def test_a_pass_reads_every_revision_holding_weights_within_the_tick_budget(
    world: World,
) -> None:
    manifests = [await rejected(world, f"weights-{i}".encode()) for i in range(3)]
    cursor, metrics = ScrubCursor(), Metrics("archiver")
    deps = world.deps()
    deps.metrics = metrics

    first = await scrub_tick(deps, cursor, budget_bytes=1)  # one revision per tick
    assert len(first.scanned) == 1 and not first.pass_completed and first.quarantined == []
    assert 0 < metrics.scrub_progress.labels("archiver")._value.get() < 1
    second = await scrub_tick(deps, cursor, budget_bytes=1)
    third = await scrub_tick(deps, cursor, budget_bytes=1)
    scanned = first.scanned + second.scanned + third.scanned
    assert sorted(scanned) == sorted((ADAPTER, m.revision) for m in manifests)
    assert third.pass_completed and cursor.passes == 1
    assert metrics.scrub_passes.labels("archiver")._value.get() == 1
    everything = await scrub_tick(deps, cursor, budget_bytes=1 << 30)
    assert len(everything.scanned) == 3 and everything.pass_completed


async def test_a_blob_changed_at_rest_is_quarantined_once_with_the_file_named(
    world: World,
) -> None:
    good = await rejected(world, b"weights-good")
    bad = await rejected(world, b"weights-bad")
    tamper(world.store.blob_path(bad.files[1].sha256))
    deps = world.deps()
    deps.metrics = Metrics("archiver")

    tick = await scrub_tick(deps, ScrubCursor(), budget_bytes=1 << 30)

    assert tick.quarantined == [(ADAPTER, bad.revision)]
    assert await world.track(bad.revision) is State.QUARANTINED
    assert await world.track(good.revision) is State.REJECTED
    [event] = await world.registry.events(ADAPTER, bad.revision, types=(RevisionQuarantined,))
    assert isinstance(event, RevisionQuarantined) and event.detected_by == "scrubber"
    assert [f.evidence["path"] for f in event.findings] == ["adapter_model.safetensors"]
    violations = deps.metrics.integrity_violations.labels("archiver", "scrubber")
    assert violations._value.get() == 1
    again = await scrub_tick(deps, ScrubCursor(), budget_bytes=1 << 30)
    assert again.quarantined == []  # recorded once
    assert len(await world.registry.events(ADAPTER, types=(RevisionQuarantined,))) == 1


async def test_an_active_revision_changed_in_its_served_copy_is_quarantined_and_can_only_leave(
    world: World,
) -> None:
    live = await activated(world, b"weights-live")
    served = world.store.revision_dir(live) / "adapter_model.safetensors"
    tamper(served)

    tick = await scrub_tick(world.deps(), ScrubCursor(), budget_bytes=1 << 30)

    assert tick.quarantined == [(ADAPTER, live.revision)]
    [event] = await world.registry.events(ADAPTER, live.revision, types=(RevisionQuarantined,))
    assert isinstance(event, RevisionQuarantined)
    assert event.findings[0].evidence["where"] == "served copy"
    record = await world.registry.revision(ADAPTER, live.revision)
    assert record is not None and record.status.track("staging") is State.ACTIVE  # still serving
    await world.registry.transition(
        lifecycle(RevisionRolledBack, ADAPTER, live.revision, "staging", restored_revision=None)
    )  # an operator's rollback takes its traffic away


async def test_deleted_revisions_are_not_read_and_an_expired_one_is_recorded_in_place(
    world: World,
) -> None:
    old = await expired(world, b"weights-old")
    tamper(world.store.blob_path(old.files[0].sha256))
    tick = await scrub_tick(world.deps(), ScrubCursor(), budget_bytes=1 << 30)
    assert tick.quarantined == [(ADAPTER, old.revision)]
    assert await world.track(old.revision) is State.EXPIRED


def test_the_pass_order_is_stable_and_resumes_after_the_cursor() -> None:
    class R:
        def __init__(self, adapter: str, revision: str) -> None:
            self.adapter, self.revision = adapter, revision

    rows = [R("b", "1"), R("a", "2"), R("a", "1")]
    assert [(r.adapter, r.revision) for r in next_batch(rows, None)] == [
        ("a", "1"),
        ("a", "2"),
        ("b", "1"),
    ]  # type: ignore[arg-type]
    assert [(r.adapter, r.revision) for r in next_batch(rows, ("a", "2"))] == [("b", "1")]  # type: ignore[arg-type]


async def test_any_quarantine_on_the_log_raises_the_alert_and_a_serving_one_says_what_to_do(
    world: World,
) -> None:
    from services.archiver.handlers import on_revision_quarantined
    from shared.quarantine import quarantined
    from tests.samples import envelope

    live = await activated(world, b"weights-live")
    deps = world.deps()
    deps.metrics = Metrics("archiver")
    event = quarantined(
        envelope("q", adapter=ADAPTER, revision=live.revision, environment=""),
        "activator",
        "sha256:" + "0" * 64,
        [],
    )
    with capture_logs() as logs:
        await on_revision_quarantined(event, deps)
    violations = deps.metrics.integrity_violations.labels("archiver", "activator")
    assert violations._value.get() == 1
    [said] = [entry for entry in logs if entry["event"] == "quarantined_revision_serving"]
    assert said["serving"] == ["staging"] and "adapterctl rollback" in said["action"]
