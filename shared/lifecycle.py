"""The revision lifecycle: its states, the one transition table, and the rules across tracks.

A revision has one revision track (registered ... deleted) and one environment track per
environment (evaluated ... superseded). An event's `envelope.environment` names the track it
moves; "" (`REVISION_TRACK_KEY`) is the revision track. Nothing outside this module decides
whether a move is legal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    ManifestArchived,
    RevisionActivated,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
    RolloutFailed,
    RolloutStalled,
    WeightsDeleted,
)

LifecycleEvent: TypeAlias = (
    RevisionRegistered
    | RevisionValidated
    | RevisionRejected
    | RevisionEvaluated
    | RevisionEvaluationFailed
    | RevisionApproved
    | RevisionDenied
    | CanaryStarted
    | CanaryExpanded
    | RevisionActivated
    | RevisionSuperseded
    | RevisionRolledBack
    | RevisionExpired
    | ManifestArchived
    | WeightsDeleted
    | RevisionQuarantined
    | RolloutFailed
    | RolloutStalled
)


class State(StrEnum):
    REGISTERED = "registered"
    VALIDATED = "validated"
    REJECTED = "rejected"
    EVALUATED = "evaluated"
    EVALUATION_FAILED = "evaluation_failed"
    APPROVED = "approved"
    DENIED = "denied"
    CANARY = "canary"
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    ROLLED_BACK = "rolled_back"
    QUARANTINED = "quarantined"  # its bytes changed on disk: never served again
    EXPIRED = "expired"
    ARCHIVED = "archived"
    DELETED = "deleted"


TRANSITIONS: Mapping[tuple[State | None, type], State] = MappingProxyType(
    {
        # revision track
        (None, RevisionRegistered): State.REGISTERED,
        (State.REGISTERED, RevisionValidated): State.VALIDATED,
        (State.REGISTERED, RevisionRejected): State.REJECTED,
        (State.VALIDATED, RevisionExpired): State.EXPIRED,
        (State.REJECTED, RevisionExpired): State.EXPIRED,
        (State.EXPIRED, ManifestArchived): State.ARCHIVED,
        (State.ARCHIVED, WeightsDeleted): State.DELETED,
        # Stored bytes that no longer hash to the manifest: the revision leaves service for
        # good (its environment tracks may only give traffic back) and can still expire.
        # Caught after expiry, it is recorded and the revision stays where it was.
        (State.REGISTERED, RevisionQuarantined): State.QUARANTINED,
        (State.VALIDATED, RevisionQuarantined): State.QUARANTINED,
        (State.REJECTED, RevisionQuarantined): State.QUARANTINED,
        (State.QUARANTINED, RevisionExpired): State.EXPIRED,
        (State.EXPIRED, RevisionQuarantined): State.EXPIRED,
        (State.ARCHIVED, RevisionQuarantined): State.ARCHIVED,
        # environment track, which starts at `validated`
        (State.VALIDATED, RevisionEvaluated): State.EVALUATED,
        (State.VALIDATED, RevisionEvaluationFailed): State.EVALUATION_FAILED,
        (State.EVALUATED, RevisionApproved): State.APPROVED,
        (State.EVALUATED, RevisionDenied): State.DENIED,
        (State.APPROVED, CanaryStarted): State.CANARY,
        (State.APPROVED, RevisionActivated): State.ACTIVE,
        (State.CANARY, CanaryExpanded): State.CANARY,
        (State.CANARY, RevisionActivated): State.ACTIVE,
        (State.CANARY, RevisionRolledBack): State.ROLLED_BACK,
        (State.ACTIVE, RevisionSuperseded): State.SUPERSEDED,
        (State.ACTIVE, RevisionRolledBack): State.ROLLED_BACK,
        (State.SUPERSEDED, RevisionActivated): State.ACTIVE,  # it was the rollback target
        # Observations (ADR 0025): a rollout that failed or stalls is recorded on the log
        # and leaves the track where it was, from every state a rollout can start in
        # (a rollback restores a superseded revision).
        **{
            (state, observation): state
            for observation in (RolloutFailed, RolloutStalled)
            for state in (State.APPROVED, State.CANARY, State.ACTIVE, State.SUPERSEDED)
        },
    }
)
# The events above that record a fact and move no track (their rows are self-loops).
OBSERVATIONS: frozenset[type] = frozenset({RolloutFailed, RolloutStalled})

REVISION_EVENTS: frozenset[type] = frozenset(
    {
        RevisionRegistered,
        RevisionValidated,
        RevisionRejected,
        RevisionExpired,
        ManifestArchived,
        WeightsDeleted,
        RevisionQuarantined,
    }
)
# What a quarantined revision's environment tracks may still do: give its traffic back.
RELEASING_EVENTS: frozenset[type] = frozenset({RevisionRolledBack, RevisionSuperseded})
ENVIRONMENT_EVENTS: frozenset[type] = frozenset(cls for _, cls in TRANSITIONS) - REVISION_EVENTS
ENVIRONMENT_TRACK_START = State.VALIDATED
# The revision track's name where tracks are named: an event's empty `environment`, and its key
# in the registry's JSON `tracks` column (stored as such; existing databases hold it).
REVISION_TRACK_KEY = ""

# An environment track in SERVING holds traffic, so the revision may not expire under it;
# every other environment state is AT_REST.
SERVING: frozenset[State] = frozenset({State.CANARY, State.ACTIVE})
AT_REST: frozenset[State] = frozenset(
    {
        State.VALIDATED,
        State.EVALUATED,
        State.EVALUATION_FAILED,
        State.APPROVED,
        State.DENIED,
        State.SUPERSEDED,
        State.ROLLED_BACK,
    }
)
# No event moves a track out of these (the revision can still expire as a whole).
TERMINAL: frozenset[State] = frozenset(
    {State.EVALUATION_FAILED, State.DENIED, State.ROLLED_BACK, State.DELETED}
)


def is_final(state: State | None) -> bool:
    """True when no event can move a track that is in `state`."""
    return state in TERMINAL


class InvalidTransition(Exception):
    """An event that the lifecycle does not allow from the track's current state."""

    def __init__(self, event: LifecycleEvent, state: State | None, reason: str = "") -> None:
        envelope = event.envelope
        self.adapter = envelope.adapter
        self.revision = envelope.revision
        self.environment = envelope.environment
        self.state = state
        self.event_type = type(event).__name__
        track = f"environment {self.environment!r} track" if self.environment else "revision track"
        message = (
            f"{self.event_type} is not legal for revision {self.revision!r} of adapter "
            f"{self.adapter!r}: its {track} is in state {state.value if state else '(none)'}"
        )
        super().__init__(f"{message}; {reason}" if reason else message)


def evolve(state: State | None, event: LifecycleEvent) -> State:
    """The state one track moves to on `event`, or InvalidTransition."""
    on_revision_track = not event.envelope.environment
    if on_revision_track != (type(event) in REVISION_EVENTS):
        wanted = "the revision track" if type(event) in REVISION_EVENTS else "an environment"
        raise InvalidTransition(event, state, f"this event must name {wanted}")
    target = TRANSITIONS.get((state, type(event)))
    if target is None:
        raise InvalidTransition(event, state)
    return target


def _frozen(tracks: Mapping[str, State]) -> Mapping[str, State]:
    return MappingProxyType(dict(tracks))


@dataclass(frozen=True, slots=True)
class RevisionStatus:
    """Where one revision stands: its revision track and each environment track it has."""

    revision_track: State | None = None
    environment_tracks: Mapping[str, State] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A copy behind a read-only view: neither the caller's dict nor ours can change it.
        object.__setattr__(self, "environment_tracks", _frozen(self.environment_tracks))

    def track(self, environment: str) -> State | None:
        """The state of one track; an environment not yet moved sits at `validated`."""
        if not environment:
            return self.revision_track
        if environment in self.environment_tracks:
            return self.environment_tracks[environment]
        return ENVIRONMENT_TRACK_START if self.revision_track is State.VALIDATED else None


def apply(status: RevisionStatus, event: LifecycleEvent) -> RevisionStatus:
    """The status after `event`, or InvalidTransition; `status` itself never changes."""
    environment = event.envelope.environment
    if not environment:
        target = evolve(status.revision_track, event)
        if isinstance(event, RevisionExpired):
            serving = sorted(e for e, s in status.environment_tracks.items() if s in SERVING)
            if serving:
                raise InvalidTransition(
                    event, status.revision_track, f"still serving in {', '.join(serving)}"
                )
        return replace(status, revision_track=target)
    releasing = status.revision_track is State.QUARANTINED and type(event) in RELEASING_EVENTS
    if (
        status.revision_track is not State.VALIDATED
        and type(event) in ENVIRONMENT_EVENTS
        and not releasing
    ):
        raise InvalidTransition(
            event,
            status.track(environment),
            f"environment tracks move only while the revision track is validated, "
            f"not {status.revision_track.value if status.revision_track else '(none)'} (a "
            "quarantined revision's may only give traffic back)",
        )
    target = evolve(status.track(environment), event)
    return replace(status, environment_tracks={**status.environment_tracks, environment: target})
