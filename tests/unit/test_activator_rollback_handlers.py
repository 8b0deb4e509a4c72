"""The activator's handlers backward, and its canary analysis: abort a canary, roll back in
one command, and the analysis timer expanding a healthy canary or rolling back a failing
one on the fake replicas' metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.activator.canary import tick
from services.activator.plans import Outcome
from services.activator.routing import lora_name
from shared.events import (
    AbortCanary,
    CanaryExpanded,
    RevisionActivated,
    RevisionRolledBack,
    RollbackRevision,
)
from shared.kafka.dispatch import PermanentError
from shared.pointers import EnvironmentPointer
from tests.unit.test_activator_handlers import ADAPTER, ENV, Rollout, header


@pytest.fixture
def rollout(tmp_path: Path) -> Rollout:
    return Rollout(tmp_path)


# AbortCanary


async def test_aborting_the_canary_rolls_it_back_and_unloads_it(rollout: Rollout) -> None:
    stable = await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    await rollout.handle[AbortCanary](AbortCanary(header=header(), revision=canary))
    [rolled_back] = await rollout.since_mark()
    assert isinstance(rolled_back, RevisionRolledBack)
    assert (rolled_back.envelope.revision, rolled_back.restored_revision) == (canary, stable)
    assert await rollout.pointer() == EnvironmentPointer(active=stable)
    assert rollout.listed() == [{lora_name(ADAPTER, stable)}] * 2
    assert await rollout.world.store.canary_step(ADAPTER, ENV) is None


async def test_a_redelivered_abort_changes_nothing(rollout: Rollout) -> None:
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    command = AbortCanary(header=header(), revision=canary)
    await rollout.handle[AbortCanary](command)
    await rollout.since_mark()
    await rollout.handle[AbortCanary](command)
    assert await rollout.since_mark() == []


async def test_aborting_a_revision_that_is_not_the_canary_is_refused(rollout: Rollout) -> None:
    stable = await rollout.active(b"one")
    command = AbortCanary(header=header(), revision=stable)
    with pytest.raises(PermanentError, match="is not the canary"):
        await rollout.handle[AbortCanary](command)
    assert await rollout.since_mark() == []
    assert await rollout.pointer() == EnvironmentPointer(active=stable)


# RollbackRevision


async def test_a_rollback_retires_the_active_revision_and_restores_the_target_in_one_command(
    rollout: Rollout,
) -> None:
    first = await rollout.active(b"one")
    second = await rollout.canary(b"two", percent=100)
    command = RollbackRevision(header=header())
    await rollout.handle[RollbackRevision](command)
    rolled_back, activated = await rollout.since_mark()
    assert isinstance(rolled_back, RevisionRolledBack)
    assert (rolled_back.envelope.revision, rolled_back.restored_revision) == (second, first)
    assert isinstance(activated, RevisionActivated)
    assert (activated.envelope.revision, activated.previous_revision) == (first, second)
    causes = {e.envelope.causation_id for e in (rolled_back, activated)}
    assert causes == {command.header.command_id}
    assert await rollout.pointer() == EnvironmentPointer(active=first)
    assert rollout.listed() == [{lora_name(ADAPTER, first)}] * 2


async def test_a_rollback_during_a_canary_stops_it_and_restores_the_target_in_one_command(
    rollout: Rollout,
) -> None:
    first = await rollout.active(b"one")
    second = await rollout.canary(b"two", percent=100)
    third = await rollout.canary(b"three")
    await rollout.handle[RollbackRevision](RollbackRevision(header=header(), to_revision=first))
    events = await rollout.since_mark()
    assert [(type(e).__name__, e.envelope.revision) for e in events] == [
        ("RevisionRolledBack", third),
        ("RevisionRolledBack", second),
        ("RevisionActivated", first),
    ]
    assert {e.restored_revision for e in events[:2]} == {first}  # what the commit leaves active
    assert await rollout.pointer() == EnvironmentPointer(active=first)


async def test_a_redelivered_rollback_changes_nothing(rollout: Rollout) -> None:
    await rollout.active(b"one")
    await rollout.canary(b"two", percent=100)
    command = RollbackRevision(header=header())
    await rollout.handle[RollbackRevision](command)
    await rollout.since_mark()
    pointer = await rollout.pointer()
    await rollout.handle[RollbackRevision](command)
    assert await rollout.since_mark() == []
    assert await rollout.pointer() == pointer


async def test_a_rollback_with_no_target_is_refused(rollout: Rollout) -> None:
    only = await rollout.active(b"one")
    command = RollbackRevision(header=header())
    with pytest.raises(PermanentError, match="no rollback target"):
        await rollout.handle[RollbackRevision](command)
    assert await rollout.since_mark() == []
    assert await rollout.pointer() == EnvironmentPointer(active=only)
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["outcome"] is Outcome.REFUSED


# Canary analysis, on the replicas' metrics

QUICK = {"min_samples": 20, "step_interval_s": 0}


def serve(rollout: Rollout, revision: str, requests: int, errors: int = 0) -> None:
    """Every replica serves `requests` of `revision` (`errors` of them failing)."""
    for replica in rollout.world.replicas:
        replica.serve(lora_name(ADAPTER, revision), requests, errors)


async def test_analysis_expands_a_healthy_canary_to_the_next_step(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    stable = await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    serve(rollout, stable, 200)
    serve(rollout, canary, 30)
    await tick(rollout.world.deps)
    [expanded] = await rollout.since_mark()
    assert isinstance(expanded, CanaryExpanded)
    assert expanded.traffic_percent == 50
    assert expanded.evidence["canary.requests"] == "60"  # both replicas, since the step began
    assert await rollout.pointer() == EnvironmentPointer(
        active=stable, canary=canary, canary_percent=50
    )


async def test_a_second_analysis_round_on_the_same_traffic_commits_nothing(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    serve(rollout, canary, 30)
    await tick(rollout.world.deps)
    await rollout.since_mark()
    await tick(rollout.world.deps)  # the new step's window is empty: it holds
    assert await rollout.since_mark() == []
    assert (await rollout.pointer()).canary_percent == 50


async def test_analysis_rolls_back_a_canary_that_fails_requests(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path, analysis=QUICK)
    stable = await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    serve(rollout, stable, 200)
    serve(rollout, canary, 30, errors=15)
    await tick(rollout.world.deps)
    [rolled_back] = await rollout.since_mark()
    assert isinstance(rolled_back, RevisionRolledBack)
    assert rolled_back.envelope.revision == canary
    assert rolled_back.evidence["decision"] == "roll_back"
    assert await rollout.pointer() == EnvironmentPointer(active=stable)
