"""The transition table row by row, the pairs it forbids, and the rules across tracks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import (
    Actor,
    CanaryExpanded,
    CanaryStarted,
    Envelope,
    ManifestArchived,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
    WeightsDeleted,
)
from shared.lifecycle import (
    AT_REST,
    ENVIRONMENT_EVENTS,
    REVISION_EVENTS,
    SERVING,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    LifecycleEvent,
    RevisionStatus,
    State,
    apply,
    evolve,
    is_final,
)
from tests.samples import sample

T0 = datetime(2025, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def make_event(
    cls: type[Any],
    revision: str = "rev-a",
    environment: str | None = None,
    *,
    adapter: str = "chat",
    at: datetime = T0,
    **fields: Any,
) -> Any:
    """A sample `cls` event about `revision`; the environment defaults to the event's track."""
    if environment is None:
        environment = "" if cls in REVISION_EVENTS else "prod"
    envelope = Envelope(
        event_id=f"e-{next(_ids)}",
        adapter=adapter,
        revision=revision,
        environment=environment,
        occurred_at=at,
        actor=Actor(principal="alice", role="operator"),
        correlation_id="c-1",
    )
    return sample(cls, envelope=envelope, **fields)


def status_with(track: State | None, environment: str = "") -> RevisionStatus:
    """A status whose `environment` track (or revision track, for "") is at `track`."""
    if not environment:
        return RevisionStatus(track)
    return RevisionStatus(State.VALIDATED, {environment: track} if track else {})


def _row_id(row: tuple[tuple[State | None, type], State]) -> str:
    (state, cls), target = row
    return f"{state or 'none'}-{cls.__name__}-{target}"


@pytest.mark.parametrize("row", TRANSITIONS.items(), ids=_row_id)
def test_each_table_row_moves_its_track_from_the_row_state_to_the_row_target(
    row: tuple[tuple[State | None, type], State],
) -> None:
    (state, cls), target = row
    event = make_event(cls)
    assert evolve(state, event) is target
    environment = event.envelope.environment
    assert apply(status_with(state, environment), event).track(environment) is target


ILLEGAL = [
    (None, RevisionValidated),
    (None, RevisionExpired),
    (State.REGISTERED, RevisionRegistered),
    (State.REGISTERED, RevisionExpired),
    (State.REGISTERED, ManifestArchived),
    (State.VALIDATED, RevisionRejected),
    (State.VALIDATED, ManifestArchived),
    (State.REJECTED, RevisionValidated),
    (State.EXPIRED, RevisionExpired),
    (State.EXPIRED, WeightsDeleted),
    (State.ARCHIVED, RevisionRegistered),
    (State.DELETED, WeightsDeleted),
    (State.VALIDATED, RevisionApproved),
    (State.VALIDATED, CanaryStarted),
    (State.EVALUATED, RevisionActivated),
    (State.EVALUATED, RevisionEvaluated),
    (State.EVALUATION_FAILED, RevisionApproved),
    (State.DENIED, RevisionApproved),
    (State.APPROVED, CanaryExpanded),
    (State.APPROVED, RevisionRolledBack),
    (State.CANARY, CanaryStarted),
    (State.CANARY, RevisionSuperseded),
    (State.ACTIVE, RevisionActivated),
    (State.ACTIVE, CanaryStarted),
    (State.SUPERSEDED, RevisionRolledBack),
    (State.SUPERSEDED, RevisionSuperseded),
    (State.ROLLED_BACK, RevisionActivated),
    (State.ROLLED_BACK, CanaryStarted),
]


@pytest.mark.parametrize(("state", "cls"), ILLEGAL, ids=lambda v: str(getattr(v, "__name__", v)))
def test_an_illegal_pair_raises_invalid_transition(state: State | None, cls: type) -> None:
    assert (state, cls) not in TRANSITIONS
    with pytest.raises(InvalidTransition):
        evolve(state, make_event(cls))


def test_every_pair_absent_from_the_table_raises_invalid_transition() -> None:
    events = [cls for _, cls in TRANSITIONS]
    for state, cls in itertools.product([None, *State], events):
        if (state, cls) in TRANSITIONS:
            continue
        with pytest.raises(InvalidTransition):
            evolve(state, make_event(cls))


def test_the_error_names_revision_adapter_track_state_and_event() -> None:
    event = make_event(RevisionActivated, "rev-9", "staging", adapter="support")
    with pytest.raises(InvalidTransition) as caught:
        evolve(State.EVALUATED, event)
    message = str(caught.value)
    for part in ("RevisionActivated", "'rev-9'", "'support'", "'staging' track", "evaluated"):
        assert part in message
    assert (caught.value.revision, caught.value.state) == ("rev-9", State.EVALUATED)


def test_a_revision_track_event_that_names_an_environment_is_illegal() -> None:
    with pytest.raises(InvalidTransition, match="must name the revision track"):
        evolve(State.VALIDATED, make_event(RevisionExpired, environment="prod"))


def test_an_environment_event_without_an_environment_is_illegal() -> None:
    with pytest.raises(InvalidTransition, match="must name an environment"):
        evolve(State.VALIDATED, make_event(RevisionEvaluated, environment=""))


@pytest.mark.parametrize("revision_track", [None, State.REGISTERED, State.REJECTED])
def test_no_environment_track_moves_before_the_revision_is_validated(
    revision_track: State | None,
) -> None:
    with pytest.raises(InvalidTransition, match="only while the revision track is validated"):
        apply(RevisionStatus(revision_track), make_event(RevisionEvaluated))


def test_an_environment_track_starts_at_validated_when_the_revision_is_validated() -> None:
    status = RevisionStatus(State.VALIDATED)
    assert status.track("prod") is State.VALIDATED
    assert RevisionStatus(State.REGISTERED).track("prod") is None


def test_environment_tracks_move_independently_of_each_other() -> None:
    status = RevisionStatus(State.VALIDATED, {"prod": State.APPROVED})
    status = apply(status, make_event(RevisionEvaluated, environment="staging"))
    status = apply(status, make_event(RevisionActivated, environment="prod"))
    assert dict(status.environment_tracks) == {"prod": State.ACTIVE, "staging": State.EVALUATED}
    assert status.revision_track is State.VALIDATED


@pytest.mark.parametrize("serving", sorted(SERVING))
def test_expiry_is_illegal_while_any_environment_serves_the_revision(serving: State) -> None:
    status = RevisionStatus(State.VALIDATED, {"staging": State.SUPERSEDED, "prod": serving})
    with pytest.raises(InvalidTransition, match="still serving in prod"):
        apply(status, make_event(RevisionExpired))


@pytest.mark.parametrize("at_rest", sorted(AT_REST))
def test_expiry_is_legal_when_every_environment_is_at_rest(at_rest: State) -> None:
    status = RevisionStatus(State.VALIDATED, {"staging": State.DENIED, "prod": at_rest})
    expired = apply(status, make_event(RevisionExpired))
    assert expired.revision_track is State.EXPIRED
    assert expired.environment_tracks == status.environment_tracks


@pytest.mark.parametrize("revision_track", [State.EXPIRED, State.ARCHIVED, State.DELETED])
@pytest.mark.parametrize("cls", sorted(ENVIRONMENT_EVENTS, key=str))
def test_no_environment_event_is_legal_after_expiry(revision_track: State, cls: type) -> None:
    status = RevisionStatus(revision_track, {"prod": State.SUPERSEDED, "staging": State.APPROVED})
    for environment in ("prod", "staging", "dev"):
        with pytest.raises(InvalidTransition):
            apply(status, make_event(cls, environment=environment))


def test_apply_returns_a_new_status_and_leaves_the_old_one_unchanged() -> None:
    tracks = {"prod": State.EVALUATED}
    before = RevisionStatus(State.VALIDATED, tracks)
    after = apply(before, make_event(RevisionApproved))
    tracks["prod"] = State.DENIED  # the caller's dict was copied, not kept
    assert before == RevisionStatus(State.VALIDATED, {"prod": State.EVALUATED})
    assert after.track("prod") is State.APPROVED
    with pytest.raises(TypeError):
        after.environment_tracks["prod"] = State.ACTIVE  # type: ignore[index]


def test_a_whole_lifecycle_reaches_deleted_through_apply() -> None:
    events: list[LifecycleEvent] = [
        make_event(RevisionRegistered),
        make_event(RevisionValidated),
        make_event(RevisionEvaluated),
        make_event(RevisionApproved),
        make_event(CanaryStarted),
        make_event(CanaryExpanded),
        make_event(RevisionActivated),
        make_event(RevisionSuperseded),
        make_event(RevisionExpired),
        make_event(ManifestArchived),
        make_event(WeightsDeleted),
    ]
    status = RevisionStatus()
    for event in events:
        status = apply(status, event)
    assert (status.revision_track, status.track("prod")) == (State.DELETED, State.SUPERSEDED)


def test_terminal_states_are_exactly_those_without_an_outgoing_row() -> None:
    leaving = {state for state, _ in TRANSITIONS}
    assert frozenset(State) - leaving == TERMINAL
    assert all(is_final(s) for s in TERMINAL)
    assert not any(is_final(s) for s in (None, State.ACTIVE, State.REJECTED, State.EXPIRED))


def test_serving_and_at_rest_split_the_environment_states_without_overlap() -> None:
    environment_states = {State.VALIDATED} | {
        target for (_, cls), target in TRANSITIONS.items() if cls in ENVIRONMENT_EVENTS
    }
    assert environment_states == SERVING | AT_REST
    assert not SERVING & AT_REST


# --- quarantine: bytes changed on disk ---------------------------------------------------


def quarantined_in(environment_state: State) -> RevisionStatus:
    status = RevisionStatus(State.VALIDATED, {"prod": environment_state})
    return apply(status, make_event(RevisionQuarantined, environment=""))


@pytest.mark.parametrize(
    "cls", [RevisionEvaluated, RevisionApproved, CanaryStarted, RevisionActivated]
)
def test_a_quarantined_revision_is_never_evaluated_approved_or_served_again(cls: type) -> None:
    before = {
        RevisionEvaluated: State.VALIDATED,
        RevisionApproved: State.EVALUATED,
        CanaryStarted: State.APPROVED,
        RevisionActivated: State.SUPERSEDED,  # a rollback back onto it
    }[cls]
    with pytest.raises(InvalidTransition, match="quarantined revision's may only give traffic"):
        apply(quarantined_in(before), make_event(cls))


@pytest.mark.parametrize(
    ("serving", "cls"),
    [
        (State.ACTIVE, RevisionRolledBack),
        (State.CANARY, RevisionRolledBack),
        (State.ACTIVE, RevisionSuperseded),
    ],
)
def test_a_quarantined_revision_still_gives_its_traffic_back_and_then_expires(
    serving: State, cls: type
) -> None:
    status = apply(quarantined_in(serving), make_event(cls))
    assert status.track("prod") in (State.ROLLED_BACK, State.SUPERSEDED)
    expired = apply(status, make_event(RevisionExpired, environment=""))
    assert expired.revision_track is State.EXPIRED


def test_a_quarantined_revision_cannot_expire_while_it_serves() -> None:
    with pytest.raises(InvalidTransition, match="still serving in prod"):
        apply(quarantined_in(State.ACTIVE), make_event(RevisionExpired, environment=""))


@pytest.mark.parametrize("state", [State.EXPIRED, State.ARCHIVED])
def test_a_change_found_after_expiry_is_recorded_and_the_revision_stays_put(state: State) -> None:
    status = apply(RevisionStatus(state), make_event(RevisionQuarantined, environment=""))
    assert status.revision_track is state
