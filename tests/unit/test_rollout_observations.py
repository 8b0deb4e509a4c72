"""Rollouts that cannot complete are on the log (ADR 0025): the lifecycle rows of the two
observations, the stall decision, the activator's handlers, the metrics and the history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from adapterctl.history import DETAILS, waited
from services.activator.fleet import ReplicasUnreachable
from services.activator.handlers import handlers
from services.activator.stalls import Stalls, stall_due, unreachable_replicas
from shared.events import (
    PromoteRevision,
    RevisionActivated,
    RevisionApproved,
    RolloutFailed,
    RolloutStalled,
)
from shared.kafka.dispatch import PermanentError
from shared.lifecycle import (
    OBSERVATIONS,
    TRANSITIONS,
    InvalidTransition,
    RevisionStatus,
    State,
    apply,
)
from shared.pointers import EnvironmentPointer, move_pointer
from tests.fakes.activator import ActivatorWorld, environment_spec
from tests.samples import sample
from tests.unit.test_activator_handlers import ADAPTER, ENV, header

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ROLLOUT_STATES = (State.APPROVED, State.CANARY, State.ACTIVE, State.SUPERSEDED)


def observation(cls: type[Any], environment: str = "prod") -> Any:
    return sample(cls, envelope=replace(sample(cls).envelope, environment=environment))


# The transition table


@pytest.mark.parametrize("state", ROLLOUT_STATES, ids=str)
@pytest.mark.parametrize("cls", [RolloutFailed, RolloutStalled], ids=lambda c: c.__name__)
def test_an_observation_leaves_a_track_where_a_rollout_can_start_in_its_state(
    cls: type[Any], state: State
) -> None:
    assert TRANSITIONS[state, cls] is state
    status = RevisionStatus(State.VALIDATED, {"prod": state})
    assert apply(status, observation(cls)).environment_tracks == {"prod": state}


@pytest.mark.parametrize(
    "state",
    [State.VALIDATED, State.EVALUATED, State.DENIED, State.ROLLED_BACK, State.EVALUATION_FAILED],
    ids=str,
)
@pytest.mark.parametrize("cls", [RolloutFailed, RolloutStalled], ids=lambda c: c.__name__)
def test_an_observation_is_illegal_where_no_rollout_can_be(cls: type[Any], state: State) -> None:
    with pytest.raises(InvalidTransition):
        apply(RevisionStatus(State.VALIDATED, {"prod": state}), observation(cls))


def test_an_observation_must_name_an_environment() -> None:
    with pytest.raises(InvalidTransition, match="must name an environment"):
        apply(
            RevisionStatus(State.VALIDATED, {"prod": State.APPROVED}),
            observation(RolloutFailed, ""),
        )


def test_every_row_of_an_observation_is_a_self_loop() -> None:
    loops = {cls for (before, cls), after in TRANSITIONS.items() if before is after}
    assert loops >= OBSERVATIONS
    assert all(
        after is before for (before, cls), after in TRANSITIONS.items() if cls in OBSERVATIONS
    )


@pytest.mark.parametrize("cls", [RolloutFailed, RolloutStalled], ids=lambda c: c.__name__)
def test_an_observation_moves_no_pointer(cls: type[Any]) -> None:
    pointer = EnvironmentPointer(active="r1", canary="r2", canary_percent=10)
    assert move_pointer(pointer, observation(cls)) == pointer


# The stall decision

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("waited_s", "threshold_s", "reported", "due"),
    [
        (0, 300, False, False),
        (299, 300, False, False),
        (300, 300, False, True),
        (3600, 300, False, True),
        (3600, 300, True, False),  # once per stalled request
        (0, 0.0001, False, False),
        (1, 0.5, False, True),
    ],
)
def test_a_stall_is_due_once_when_the_wait_reaches_the_threshold(
    waited_s: int, threshold_s: float, reported: bool, due: bool
) -> None:
    assert stall_due(T0, T0 + waited_s * S, threshold_s, reported) is due


def test_the_unreachable_replicas_are_read_from_the_outage_in_order_once_each() -> None:
    message = (
        "http://10.0.0.2:8000: connection refused; http://10.0.0.3:8000: timed out; "
        "http://10.0.0.2:8000: connection refused"
    )
    assert unreachable_replicas(message) == ["http://10.0.0.2:8000", "http://10.0.0.3:8000"]


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_stalled_gauge_is_one_while_a_reported_stall_lasts_and_failures_are_counted() -> None:
    registry = CollectorRegistry()
    stalls = Stalls(10, registry)
    labels = {"adapter": "chat", "environment": "prod"}
    stalls.unreachable("c1", "chat", "prod", T0)
    assert not stalls.due("c1", T0 + 9 * S) and stalls.due("c1", T0 + 10 * S)
    stalls.reported("c1")
    assert not stalls.due("c1", T0 + 99 * S)
    assert metric(registry, "adapter_rollout_stalled", **labels) == 1
    stalls.ended("c1", "chat", "prod", failed=False)
    assert metric(registry, "adapter_rollout_stalled", **labels) == 0
    stalls.ended("c2", "chat", "prod", failed=True)
    assert metric(registry, "adapter_rollouts_failed_total", **labels) == 1


# The activator


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> ActivatorWorld:
    return ActivatorWorld(tmp_path, environment_spec(ENV))


def committed(world: ActivatorWorld, since: int = 0) -> list[Any]:
    return [world.registry.codec.decode(e.payload) for e in world.registry.outbox[since:]]


async def test_a_rollout_whose_replica_refuses_the_load_is_on_the_log_as_failed(
    world: ActivatorWorld,
) -> None:
    approved = await world.approve(ADAPTER, b"one")
    mark = len(world.registry.outbox)
    world.replicas.target("http://replica-2").fail_loads("out of LoRA slots")
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="did not load on every replica"):
        await handlers(world.deps)[PromoteRevision](command)
    [failed] = committed(world, mark)
    assert isinstance(failed, RolloutFailed)
    assert failed.envelope.revision == approved.envelope.revision
    assert failed.envelope.environment == ENV
    assert failed.cause_id == command.header.command_id == failed.envelope.causation_id
    assert failed.action == "promote" and "out of LoRA slots" in failed.reason
    assert failed.evidence["stopped_by"] == "load"
    assert (await world.registry.pointer(ADAPTER, ENV)) == EnvironmentPointer()


async def test_a_rollout_waiting_on_a_down_replica_past_its_threshold_stalls_once_then_completes(
    world: ActivatorWorld,
) -> None:
    clock = Clock()
    world.deps.clock = clock
    registry = CollectorRegistry()
    world.deps.stalls = Stalls(300, registry)
    approved = await world.approve(ADAPTER, b"one")
    mark = len(world.registry.outbox)
    [down, _] = world.replicas
    down.down = True
    handle = handlers(world.deps)[RevisionApproved]
    for minutes in (0, 2, 5, 6, 9):  # the dispatcher trying again and again
        clock.now = T0 + timedelta(minutes=minutes)
        with pytest.raises(ReplicasUnreachable):
            await handle(approved)
    [stalled] = committed(world, mark)
    assert isinstance(stalled, RolloutStalled)
    assert stalled.unreachable == [down.url]
    assert stalled.stalled_since == T0 and stalled.waited_s == 300
    assert stalled.cause_id == approved.envelope.event_id
    labels = {"adapter": ADAPTER, "environment": ENV}
    assert metric(registry, "adapter_rollout_stalled", **labels) == 1

    down.down = False
    await handle(approved)
    [activated] = committed(world, mark + 1)
    assert isinstance(activated, RevisionActivated)
    assert metric(registry, "adapter_rollout_stalled", **labels) == 0


# The history


def test_history_says_why_a_rollout_failed_and_how_long_one_stalled() -> None:
    failed, stalled = sample(RolloutFailed), sample(RolloutStalled)
    assert DETAILS[RolloutFailed](failed).startswith("rollout failed (approved): replica ")
    assert DETAILS[RolloutStalled](stalled) == (
        "rollout stalled for 5 min (promote): replicas http://127.0.0.1:8402 unreachable"
    )


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (59, "59 s"), (300, "5 min"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_a_wait_reads_in_seconds_minutes_or_hours(seconds: int, shown: str) -> None:
    assert waited(seconds) == shown
