"""Random walks over the lifecycle: what `apply`, `move_pointer` and `fold` always keep true.

Each walk offers random events for a few revisions of one adapter in two environments and
keeps those `apply` accepts. Most steps pick an event class the table allows from the chosen
track's state, so walks reach canaries, activations, rollbacks and expiry; the rest are
arbitrary, so rejections are exercised too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import given, settings, target
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
Step = tuple[str, int, int, int]
PROPERTY = settings(max_examples=150, deadline=None)


def reachable(start: State | None, events: frozenset[type]) -> set[State]:
    """Every state the table reaches from `start` through `events`."""
    seen: set[State] = set()
    frontier = [start]
    while frontier:
        state = frontier.pop()
        for (source, cls), after in TRANSITIONS.items():
            if source == state and cls in events and after not in seen:
                seen.add(after)
                frontier.append(after)
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


def shape(pointer: EnvironmentPointer) -> tuple[bool, ...]:
    """Which slots of a pointer are filled."""
    return tuple(
        slot is not None for slot in (pointer.active, pointer.canary, pointer.rollback_target)
    )


# One step: which revision, a roll for the track, a roll for the event, a traffic share.
STEP = st.tuples(
    st.sampled_from(REVISIONS), st.integers(0, 99), st.integers(0, 99), st.integers(0, 100)
)
WALKS = st.lists(STEP, min_size=30, max_size=100)


def walk(steps: list[Step], check: Callable[[Replay], None] = lambda _: None) -> Replay:
    """Offer one event per step, calling `check` after each one accepted.

    The rolls choose among the moves the walk's state makes likely: a validated revision
    mostly moves its environment tracks (so it lives long enough to be rolled out), any
    other mostly its revision track; nine steps in ten take an event the table allows from
    the track's state, favouring the longer paths, and the tenth takes any event at all.
    Hypothesis is steered towards walks that cover more table rows and pointer shapes.
    """
    replay, seen = Replay(), set[object]()
    for minute, (revision, track_roll, event_roll, percent) in enumerate(steps):
        rolling = replay.status(revision).revision_track is State.VALIDATED
        tracks = (*ENVIRONMENTS * 6, "") if rolling else ("", "", "", *ENVIRONMENTS)
        environment = tracks[track_roll % len(tracks)]
        state = replay.status(revision).track(environment)
        track_events = ENVIRONMENT_EVENTS if environment else REVISION_EVENTS
        allowed = [
            cls
            for (source, cls), after in TRANSITIONS.items()
            if source == state and cls in track_events
            for _ in range(1 if after in DEAD_ENDS else 9)
        ]
        choices = allowed if allowed and event_roll % 10 else EVENT_CLASSES
        cls = choices[event_roll // 10 % len(choices)]
        fields: dict[str, Any] = {}
        if cls in (CanaryStarted, CanaryExpanded):
            fields["traffic_percent"] = percent
        at = T0 + timedelta(minutes=minute)
        if replay.offer(make_event(cls, revision, environment, at=at, **fields)):
            check(replay)
            seen.add((state, cls))
            seen.update(shape(p) for p in replay.pointers.values())
    target(len(seen), label="transitions and pointer shapes covered")
    return replay


@PROPERTY
@given(WALKS)
def test_a_random_walk_reaches_only_states_the_table_reaches(steps: list[Step]) -> None:
    replay = walk(steps)
    for status in replay.statuses.values():
        assert status.revision_track in REVISION_REACHABLE
        assert set(status.environment_tracks.values()) <= ENVIRONMENT_REACHABLE


@PROPERTY
@given(WALKS)
def test_no_revision_expires_while_an_environment_still_serves_it(steps: list[Step]) -> None:
    def check(replay: Replay) -> None:
        for status in replay.statuses.values():
            if status.revision_track in GONE:
                assert not set(status.environment_tracks.values()) & SERVING

    walk(steps, check)


@PROPERTY
@given(WALKS)
def test_a_pointer_never_names_a_revision_rolled_back_there_or_expired(
    steps: list[Step],
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

    walk(steps, check)


@PROPERTY
@given(WALKS)
def test_folding_a_legal_sequence_equals_applying_it_step_by_step(steps: list[Step]) -> None:
    replay = walk(steps)
    ledger = fold(replay.accepted)
    assert ledger.statuses == {("chat", r): s for r, s in replay.statuses.items()}
    for environment, pointer in replay.pointers.items():
        assert ledger.pointers.get(("chat", environment), EnvironmentPointer()) == pointer
    last_changes = {(c.adapter, c.environment): c.pointer for c in ledger.history}
    assert last_changes == dict(ledger.pointers)
