"""Pointer moves row by row, and the audit fold answering "what served E at time T"."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionExpired,
    RevisionRegistered,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.lifecycle import InvalidTransition, LifecycleEvent, State
from shared.pointers import EnvironmentPointer, fold, move_pointer, pointer_at
from tests.unit.test_lifecycle import T0, make_event

P = EnvironmentPointer


def at(hour: int, minute: int = 0) -> datetime:
    return T0 + timedelta(hours=hour, minutes=minute)


MOVES = [
    (
        "a started canary takes its share and tenants",
        P(active="a"),
        make_event(CanaryStarted, "b", traffic_percent=5, tenants=["t1"]),
        P(active="a", canary="b", canary_percent=5, canary_tenants=("t1",)),
    ),
    (
        "a started canary replaces an earlier canary",
        P(canary="b", canary_percent=50),
        make_event(CanaryStarted, "c", traffic_percent=1, tenants=[]),
        P(canary="c", canary_percent=1),
    ),
    (
        "an expanded canary updates its share and tenants",
        P(active="a", canary="b", canary_percent=5),
        make_event(CanaryExpanded, "b", traffic_percent=25, tenants=["t1", "t2"]),
        P(active="a", canary="b", canary_percent=25, canary_tenants=("t1", "t2")),
    ),
    (
        "expanding a revision that is not the canary changes nothing",
        P(active="a", canary="b", canary_percent=5),
        make_event(CanaryExpanded, "c", traffic_percent=90),
        P(active="a", canary="b", canary_percent=5),
    ),
    (
        "a first activation has no rollback target",
        P(),
        make_event(RevisionActivated, "a"),
        P(active="a"),
    ),
    (
        "the replaced active revision becomes the rollback target",
        P(active="a", rollback_target="old"),
        make_event(RevisionActivated, "b"),
        P(active="b", rollback_target="a"),
    ),
    (
        "an activated canary leaves the canary slot",
        P(active="a", canary="b", canary_percent=25, canary_tenants=("t1",)),
        make_event(RevisionActivated, "b"),
        P(active="b", rollback_target="a"),
    ),
    (
        "an activation with nothing active keeps the rollback target",
        P(rollback_target="a"),
        make_event(RevisionActivated, "c"),
        P(active="c", rollback_target="a"),
    ),
    (
        "activating the rollback target leaves no rollback target",
        P(rollback_target="a"),
        make_event(RevisionActivated, "a"),
        P(active="a"),
    ),
    (
        "a rolled-back canary leaves the canary slot and nothing else",
        P(active="a", canary="b", canary_percent=5, canary_tenants=("t1",), rollback_target="z"),
        make_event(RevisionRolledBack, "b", reason="errors"),
        P(active="a", rollback_target="z"),
    ),
    (
        "rolling back the active revision clears active and consumes the target",
        P(active="b", rollback_target="a"),
        make_event(RevisionRolledBack, "b", reason="errors", restored_revision="a"),
        P(),
    ),
    (
        "a rolled-back rollback target is no longer a target",
        P(active="c", rollback_target="b"),
        make_event(RevisionRolledBack, "b", reason="errors"),
        P(active="c"),
    ),
    (
        "rolling back a revision the pointer does not name changes nothing",
        P(active="a", rollback_target="z"),
        make_event(RevisionRolledBack, "q", reason="errors"),
        P(active="a", rollback_target="z"),
    ),
    (
        "an expired rollback target is no longer a target",
        P(active="b", rollback_target="a"),
        make_event(RevisionExpired, "a", reason="ttl"),
        P(active="b"),
    ),
    (
        "an expired revision left active after its supersession is cleared",
        P(active="a", rollback_target="z"),
        make_event(RevisionExpired, "a", reason="ttl"),
        P(rollback_target="z"),
    ),
    (
        "a supersession alone leaves the pointer to the activation",
        P(active="a"),
        make_event(RevisionSuperseded, "a", superseded_by="b"),
        P(active="a"),
    ),
    (
        "an evaluation does not touch the pointer",
        P(active="a", canary="b", canary_percent=5),
        make_event(RevisionEvaluated, "c"),
        P(active="a", canary="b", canary_percent=5),
    ),
]


@pytest.mark.parametrize(
    ("before", "event", "after"), [m[1:] for m in MOVES], ids=[m[0] for m in MOVES]
)
def test_each_event_moves_the_pointer_as_the_rules_say(
    before: EnvironmentPointer, event: LifecycleEvent, after: EnvironmentPointer
) -> None:
    assert move_pointer(before, event) == after


def promoted(revision: str, hour: int, environment: str = "prod") -> list[LifecycleEvent]:
    """Register, validate, evaluate and approve `revision` for `environment` at `hour`."""
    return [
        make_event(RevisionRegistered, revision, at=at(hour)),
        make_event(RevisionValidated, revision, at=at(hour)),
        make_event(RevisionEvaluated, revision, environment, at=at(hour)),
        make_event(RevisionApproved, revision, environment, at=at(hour)),
    ]


def rollout_with_rollback() -> list[LifecycleEvent]:
    """a active at 10:00; b canary 11:00, 25% at 11:30, active 12:00; b rolled back 13:00."""
    return [
        *promoted("a", 9),
        make_event(RevisionActivated, "a", at=at(10)),
        *promoted("b", 10, "prod"),
        make_event(CanaryStarted, "b", at=at(11), traffic_percent=5, tenants=["acme"]),
        make_event(
            CanaryExpanded, "b", at=at(11, 30), traffic_percent=25, tenants=["acme", "globex"]
        ),
        make_event(RevisionSuperseded, "a", at=at(12), superseded_by="b"),
        make_event(RevisionActivated, "b", at=at(12), previous_revision="a"),
        make_event(RevisionRolledBack, "b", at=at(13), reason="errors", restored_revision="a"),
        make_event(RevisionActivated, "a", at=at(13), previous_revision="b"),
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(9, 59), None),
        (at(10), P(active="a")),
        (at(11, 15), P(active="a", canary="b", canary_percent=5, canary_tenants=("acme",))),
        (
            at(11, 45),
            P(active="a", canary="b", canary_percent=25, canary_tenants=("acme", "globex")),
        ),
        (at(12, 30), P(active="b", rollback_target="a")),
        (at(13), P(active="a")),
        (at(23), P(active="a")),
    ],
    ids=str,
)
def test_pointer_at_answers_which_revision_served_prod_at_a_time(
    when: datetime, expected: EnvironmentPointer | None
) -> None:
    ledger = fold(rollout_with_rollback())
    assert pointer_at(ledger, "chat", "prod", when) == expected


def test_pointer_at_knows_nothing_of_an_environment_or_adapter_never_pointed() -> None:
    ledger = fold(rollout_with_rollback())
    assert pointer_at(ledger, "chat", "staging", at(23)) is None
    assert pointer_at(ledger, "other", "prod", at(23)) is None


def test_the_fold_keeps_statuses_current_pointers_and_only_real_pointer_changes() -> None:
    ledger = fold(rollout_with_rollback())
    assert ledger.statuses["chat", "a"].track("prod") is State.ACTIVE
    assert ledger.statuses["chat", "b"].track("prod") is State.ROLLED_BACK
    assert ledger.pointers["chat", "prod"] == P(active="a")
    changed_by = [type(change.event).__name__ for change in ledger.history]
    assert changed_by == [
        "RevisionActivated",
        "CanaryStarted",
        "CanaryExpanded",
        "RevisionActivated",
        "RevisionRolledBack",
        "RevisionActivated",
    ]
    assert [change.pointer for change in ledger.history][-2] == P()


def test_a_rollback_ends_with_the_same_pointer_whichever_event_comes_first() -> None:
    events = rollout_with_rollback()
    swapped = [*events[:-2], events[-1], events[-2]]
    assert fold(swapped).pointers == fold(events).pointers


def test_an_expiry_clears_the_revision_from_every_environment_of_its_adapter_only() -> None:
    events = [
        *promoted("a", 1),
        make_event(RevisionEvaluated, "a", "staging"),
        make_event(RevisionApproved, "a", "staging"),
        make_event(RevisionActivated, "a", "prod"),
        make_event(RevisionActivated, "a", "staging"),
        *promoted("b", 2),
        make_event(RevisionActivated, "b", "prod"),
        make_event(RevisionSuperseded, "a", "prod", superseded_by="b"),
        make_event(RevisionRegistered, "a", adapter="other"),
        make_event(RevisionValidated, "a", adapter="other"),
        make_event(RevisionEvaluated, "a", adapter="other"),
        make_event(RevisionApproved, "a", adapter="other"),
        make_event(RevisionActivated, "a", adapter="other"),
    ]
    with pytest.raises(InvalidTransition, match="still serving in staging"):
        fold([*events, make_event(RevisionExpired, "a", reason="ttl")])
    events.append(make_event(RevisionSuperseded, "a", "staging", superseded_by="none"))
    ledger = fold([*events, make_event(RevisionExpired, "a", reason="ttl")])
    assert ledger.pointers["chat", "prod"] == P(active="b")
    assert ledger.pointers["chat", "staging"] == P()
    assert ledger.pointers["other", "prod"] == P(active="a")


def test_the_fold_stops_at_the_first_illegal_event() -> None:
    events = [
        *promoted("a", 1),
        make_event(CanaryExpanded, "a", traffic_percent=50),
        make_event(RevisionActivated, "a"),
    ]
    with pytest.raises(InvalidTransition, match=r"CanaryExpanded .* state approved"):
        fold(events)
