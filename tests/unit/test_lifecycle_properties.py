"""Random walks over the lifecycle: what `apply`, `move_pointer` and `fold` always keep true.

Each walk offers random events for a few revisions of one adapter in two environments and
keeps those `apply` accepts. Most steps pick an event class the table allows from the chosen
track's state, so walks reach canaries, activations, rollbacks and expiry; the rest are
arbitrary, so rejections are exercised too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events import CanaryExpanded, CanaryStarted
from shared.lifecycle import (
    ENVIRONMENT_EVENTS,
    ENVIRONMENT_TRACK_START,
    REVISION_EVENTS,
    SERVING,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    LifecycleEvent,
    RevisionStatus,
    State,
    apply,
)
from shared.pointers import EnvironmentPointer, fold, move_pointer
from tests.unit.test_lifecycle import T0, make_event

REVISIONS = ("r1", "r2", "r3")
ENVIRONMENTS = ("prod", "staging")
EVENT_CLASSES = sorted({cls for _, cls in TRANSITIONS}, key=lambda cls: cls.__name__)
GONE = frozenset({State.EXPIRED, State.ARCHIVED, State.DELETED})
DEAD_ENDS = TERMINAL | GONE


def reachable(start: State | None, events: frozenset[type]) -> set[State]:
    """Every state the table reaches from `start` through `events`."""
    seen: set[State] = set()
    frontier = [start]
    while frontier:
        state = frontier.pop()
        for (source, cls), target in TRANSITIONS.items():
            if source == state and cls in events and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


REVISION_REACHABLE = reachable(None, REVISION_EVENTS)
ENVIRONMENT_REACHABLE = {ENVIRONMENT_TRACK_START} | reachable(
    ENVIRONMENT_TRACK_START, ENVIRONMENT_EVENTS
)


class Replay:
    """The step-by-step reference: `apply` per revision, `move_pointer` per environment."""

    def __init__(self) -> None:
        self.statuses: dict[str, RevisionStatus] = {}
        self.pointers = dict.fromkeys(ENVIRONMENTS, EnvironmentPointer())
        self.accepted: list[LifecycleEvent] = []

    def status(self, revision: str) -> RevisionStatus:
        return self.statuses.get(revision, RevisionStatus())

    def offer(self, event: LifecycleEvent) -> bool:
        """Apply `event` if it is legal; False (and nothing changes) if it is not."""
        envelope = event.envelope
        try:
            self.statuses[envelope.revision] = apply(self.status(envelope.revision), event)
        except InvalidTransition:
            return False
        self.accepted.append(event)
        for environment in [envelope.environment] if envelope.environment else ENVIRONMENTS:
            self.pointers[environment] = move_pointer(self.pointers[environment], event)
        return True


def walk(data: st.DataObject, check: Callable[[Replay], None] = lambda _: None) -> Replay:
    """Offer 10 to 150 random events, calling `check` after each one accepted."""
    replay = Replay()
    for step in range(data.draw(st.integers(10, 150), label="steps")):
        revision = data.draw(st.sampled_from(REVISIONS))
        # A validated revision mostly moves its environment tracks, so it lives long enough
        # to be rolled out; any other mostly moves its revision track.
        rolling = replay.status(revision).revision_track is State.VALIDATED
        tracks = (*ENVIRONMENTS * 4, "") if rolling else ("", "", "", *ENVIRONMENTS)
        environment = data.draw(st.sampled_from(tracks))
        state = replay.status(revision).track(environment)
        track_events = ENVIRONMENT_EVENTS if environment else REVISION_EVENTS
        allowed = [
            cls
            for (source, cls), target in TRANSITIONS.items()
            if source == state and cls in track_events
            for _ in range(1 if target in DEAD_ENDS else 4)  # favour the longer paths
        ]
        if allowed and data.draw(st.integers(0, 9)) > 0:
            cls = data.draw(st.sampled_from(allowed))
        else:
            cls = data.draw(st.sampled_from(EVENT_CLASSES))
        fields: dict[str, int] = {}
        if cls in (CanaryStarted, CanaryExpanded):
            fields["traffic_percent"] = data.draw(st.integers(0, 100))
        at = T0 + timedelta(minutes=step)
        if replay.offer(make_event(cls, revision, environment, at=at, **fields)):
            check(replay)
    return replay


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_random_walk_reaches_only_states_the_table_reaches(data: st.DataObject) -> None:
    replay = walk(data)
    for status in replay.statuses.values():
        assert status.revision_track in REVISION_REACHABLE
        assert set(status.environment_tracks.values()) <= ENVIRONMENT_REACHABLE


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_revision_expires_while_an_environment_still_serves_it(data: st.DataObject) -> None:
    def check(replay: Replay) -> None:
        for status in replay.statuses.values():
            if status.revision_track in GONE:
                assert not set(status.environment_tracks.values()) & SERVING

    walk(data, check)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_pointer_never_names_a_revision_rolled_back_there_or_expired(
    data: st.DataObject,
) -> None:
    def check(replay: Replay) -> None:
        for environment, pointer in replay.pointers.items():
            named = [pointer.active, pointer.canary, pointer.rollback_target]
            for revision in filter(None, named):
                status = replay.status(revision)
                assert status.revision_track not in GONE
                assert status.track(environment) is not State.ROLLED_BACK
            if pointer.canary is not None:
                assert replay.status(pointer.canary).track(environment) is State.CANARY
            if pointer.active is not None:
                assert pointer.active != pointer.rollback_target

    walk(data, check)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_folding_a_legal_sequence_equals_applying_it_step_by_step(data: st.DataObject) -> None:
    replay = walk(data)
    ledger = fold(replay.accepted)
    assert ledger.statuses == {("chat", r): s for r, s in replay.statuses.items()}
    for environment, pointer in replay.pointers.items():
        assert ledger.pointers.get(("chat", environment), EnvironmentPointer()) == pointer
    for change in ledger.history[-1:]:
        assert ledger.pointers[change.adapter, change.environment] == change.pointer
