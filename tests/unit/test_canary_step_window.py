"""A canary step counts only what was served during it: a replica missing from the step's
baseline counts nothing until its first scrape becomes its baseline, and what `rollout
status` shows is the current step's evidence, never the last step's."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from services.activator import metrics
from services.activator.canary import analyse_canary, tick
from services.activator.metrics import Counters
from services.activator.ports import TargetError
from services.activator.routing import lora_name
from shared.events import CanaryExpanded, ExpandCanary
from shared.pointers import EnvironmentPointer
from tests.unit.test_activator_handlers import ADAPTER, ENV, Rollout, header

QUICK = {"min_samples": 20, "step_interval_s": 0}
ONE = Counters(1, 0, ((math.inf, 1),))


def test_a_replica_missing_from_the_baseline_counts_nothing_and_its_scrape_is_its_baseline() -> (
    None
):
    before = {"r1": {"a@1": Counters(10, 1, ((math.inf, 10),))}}
    now = {
        "r1": {"a@1": Counters(12, 1, ((math.inf, 12),))},
        "r2": {"a@1": Counters(400, 9, ((math.inf, 400),))},  # away when the step began
    }

    assert metrics.window(now, before)["a@1"] == Counters(2, 0, ((math.inf, 2),))
    assert metrics.rebase(now, before) == {**before, "r2": now["r2"]}


@pytest.mark.parametrize(
    ("now", "before", "counted", "rebased"),
    [
        # a lora born after the baseline, on a replica in it: counts from zero
        ({"r1": {"a@2": ONE}}, {"r1": {}}, {"a@2": ONE}, {"r1": {}}),
        # a counter that went down: the replica restarted; counts from zero, and from now on
        # against zero, so it is not lost once it passes the old value
        (
            {"r1": {"a@1": Counters(3, 0, ((math.inf, 3),))}},
            {"r1": {"a@1": Counters(100, 5, ((math.inf, 100),))}},
            {"a@1": Counters(3, 0, ((math.inf, 3),))},
            {"r1": {"a@1": Counters()}},
        ),
        # a replica in the baseline that is away now: nothing counted, its baseline kept
        ({}, {"r1": {"a@1": ONE}}, {}, {"r1": {"a@1": ONE}}),
        # a replica that is only now scraped: nothing counted, its scrape is its baseline
        ({"r2": {"a@1": ONE}}, {}, {}, {"r2": {"a@1": ONE}}),
    ],
)
def test_each_replica_counts_since_its_own_baseline(
    now: dict[str, dict[str, Counters]],
    before: dict[str, dict[str, Counters]],
    counted: dict[str, Counters],
    rebased: dict[str, dict[str, Counters]],
) -> None:
    assert metrics.window(now, before) == counted
    assert metrics.rebase(now, before) == rebased


def serve(rollout: Rollout, revision: str, requests: int, *, replica: int | None = None) -> None:
    """Replica number `replica` (every one when None) serves `requests` of `revision`."""
    replicas = list(rollout.world.replicas)
    for r in replicas if replica is None else [replicas[replica]]:
        r.serve(lora_name(ADAPTER, revision), requests)


async def test_a_replica_away_when_the_step_began_does_not_complete_the_step_at_once(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")  # 10%
    serve(rollout, canary, 40, replica=1)  # served at 10%, before the next step
    away = list(rollout.world.replicas)[1]
    scrape = away.metrics

    async def timing_out() -> str:
        raise TargetError(away.url, "timed out", retryable=True, unreachable=True)

    away.metrics = timing_out  # type: ignore[method-assign]
    await rollout.handle[ExpandCanary](  # the step's baseline is taken without replica 2
        ExpandCanary(header=header(), revision=canary, traffic_percent=50)
    )
    await rollout.since_mark()
    away.metrics = scrape  # type: ignore[method-assign]
    # back: its cumulative 40 requests were served before the step, not during it

    await tick(rollout.world.deps)
    serve(rollout, canary, 1, replica=1)  # the one request of the step
    await tick(rollout.world.deps)

    assert await rollout.since_mark() == []
    assert (await rollout.pointer()).canary_percent == 50
    [row] = await rollout.world.store.canary_rows(ADAPTER, ENV)
    assert row["last_decision"]["reason"] == "waiting for samples: 1 of 20"


async def test_a_new_step_shows_its_own_evidence_with_no_samples_not_the_last_steps(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    serve(rollout, canary, 30)
    await tick(rollout.world.deps)  # healthy at 10%: expanded to 50%
    [expanded] = await rollout.since_mark()
    assert isinstance(expanded, CanaryExpanded)

    [row] = await rollout.world.store.canary_rows(ADAPTER, ENV)

    assert row["traffic_percent"] == 50
    evidence = row["last_decision"]
    assert evidence["traffic_percent"] == "50"
    assert (evidence["decision"], evidence["canary.requests"]) == ("hold", "0")
    assert evidence["reason"] == "waiting for samples: 0 of 20"


async def test_judging_with_a_stale_pointer_keeps_the_step_the_last_rollout_began(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    stale = await rollout.pointer()  # what the round read before the expand committed
    await rollout.handle[ExpandCanary](
        ExpandCanary(header=header(), revision=canary, traffic_percent=50)
    )
    step = await rollout.world.store.canary_step(ADAPTER, ENV)

    await analyse_canary(rollout.world.deps, ADAPTER, ENV, stale)

    assert await rollout.world.store.canary_step(ADAPTER, ENV) == step


async def test_a_step_judged_while_an_expand_commits_does_not_note_its_verdict_on_the_next_step(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    scraping, release = asyncio.Event(), asyncio.Event()
    replica = next(iter(rollout.world.replicas))
    scrape = replica.metrics

    async def slow_metrics() -> str:  # the judging's scrape waits for the expand to try
        scraping.set()
        await release.wait()
        replica.metrics = scrape  # type: ignore[method-assign]
        return await scrape()

    replica.metrics = slow_metrics  # type: ignore[method-assign]
    judging = asyncio.create_task(
        analyse_canary(rollout.world.deps, ADAPTER, ENV, await rollout.pointer())
    )
    await scraping.wait()
    expanding = asyncio.create_task(
        rollout.handle[ExpandCanary](
            ExpandCanary(header=header(), revision=canary, traffic_percent=50)
        )
    )
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(judging, expanding)

    assert await rollout.pointer() == EnvironmentPointer(
        active=(await rollout.pointer()).active, canary=canary, canary_percent=50
    )
    [row] = await rollout.world.store.canary_rows(ADAPTER, ENV)
    assert row["last_decision"]["traffic_percent"] == "50"
