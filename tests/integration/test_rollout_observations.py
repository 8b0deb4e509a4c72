"""Rollouts that cannot complete are on the log (ADR 0025), on the real stack: a replica that
refuses the load gives a RolloutFailed, one that stays down past the stall threshold one
RolloutStalled (and the rollout completes once it is back); `adapterctl history` says why,
and both verifiers accept the log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from shared.events import RevisionActivated, RolloutFailed, RolloutStalled
from tests.conftest import Infra
from tests.integration.test_activator import Rollouts, rollouts_on, start_replica, wait_healthy

STALL_AFTER_S = 3


@pytest.fixture(scope="module")
async def rollouts(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rollouts]:
    root = tmp_path_factory.mktemp("observations")
    async with rollouts_on(infra, root, ACTIVATOR_STALL_AFTER_S=str(STALL_AFTER_S)) as rollouts:
        yield rollouts


def of(kind: type, events: list[object]) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


async def test_a_replica_that_refuses_the_load_puts_a_rollout_failed_on_the_log(
    rollouts: Rollouts,
) -> None:
    adapter = f"refused-{uuid.uuid4().hex[:8]}"
    with rollouts.faults(rollouts.replicas[1], loads={adapter: "error"}):
        approved = await rollouts.approve(adapter, "good")
        events = rollouts.wait(adapter, (RolloutFailed, approved.revision))
    outcome = await rollouts.outcome(approved.event_id)

    [failed] = of(RolloutFailed, events)
    assert isinstance(failed, RolloutFailed)
    assert failed.cause_id == approved.event_id and failed.action == "approved"
    assert "did not load on every replica" in failed.reason
    assert "injected load fault" in failed.reason
    assert failed.evidence["stopped_by"] == "load"
    assert outcome["outcome"] == "failed" and outcome["detail"] == failed.reason
    assert not of(RevisionActivated, rollouts.stack.events(adapter))
    history = rollouts.stack.adapterctl("history", adapter).stdout
    assert "RolloutFailed" in history
    assert "rollout failed (approved): " in history and "did not load" in history


async def test_a_replica_down_past_the_threshold_stalls_the_rollout_once_until_it_is_back(
    rollouts: Rollouts,
) -> None:
    adapter = f"stalled-{uuid.uuid4().hex[:8]}"
    stack, url = rollouts.stack, rollouts.replicas[1]
    down = stack.processes["replica2"]
    down.terminate()
    down.wait(timeout=30)
    try:
        approved = await rollouts.approve(adapter, "good")
        stack.wait_for(
            lambda events: bool(of(RolloutStalled, events)),
            adapter=adapter,
            timeout_s=90,
            services=("activator",),
        )
    finally:
        start_replica(stack, rollouts.tiny, "replica2", port=int(url.rsplit(":", 1)[1]))
        wait_healthy(stack, [url])
    events = rollouts.wait(adapter, (RevisionActivated, approved.revision))

    [stalled] = of(RolloutStalled, events)  # once, however often it was tried meanwhile
    assert isinstance(stalled, RolloutStalled)
    assert stalled.unreachable == [url] and stalled.cause_id == approved.event_id
    assert stalled.waited_s >= STALL_AFTER_S
    assert [type(e) for e in events[-2:]] == [RolloutStalled, RevisionActivated]
    history = stack.adapterctl("history", adapter).stdout
    assert f"rollout stalled for {stalled.waited_s} s (approved): replicas {url} unreachable" in (
        history
    )


async def test_both_verifiers_accept_a_log_with_failed_and_stalled_rollouts(
    rollouts: Rollouts,
) -> None:
    events = rollouts.stack.events()
    assert of(RolloutFailed, events) and of(RolloutStalled, events)
    report = rollouts.stack.both_verifiers_agree(rollouts.stack.root / "test-decisions.pub")
    assert report["ok"], report["problems"][:3]
