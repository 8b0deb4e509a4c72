"""Value types shared by several events: who acted, the lifecycle envelope, findings, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.ids import derive_event_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """A principal and the role it acted in."""

    principal: str
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseModelRef:
    """A base model pinned to an exact revision (a commit or content digest)."""

    model_id: str
    revision: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """What every lifecycle event carries.

    `seq`, `prev_hash` and `hash` are assigned by the registry when the transition
    commits; a service builds events with their defaults. `environment` is empty for
    revision-wide facts (registered, validated, expired, ...) and names the
    environment for the per-environment track (evaluated ... superseded).
    """

    event_id: str
    adapter: str
    revision: str
    environment: str = ""
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""
    occurred_at: datetime
    actor: Actor
    causation_id: str | None = None
    correlation_id: str

    @classmethod
    def caused_by(
        cls,
        cause: Envelope,
        *,
        event_type: str,
        actor: Actor,
        occurred_at: datetime,
        environment: str = "",
    ) -> Envelope:
        """The envelope of the `event_type` event that `cause` leads to, on the same revision."""
        return caused_envelope(
            cause_id=cause.event_id,
            correlation_id=cause.correlation_id,
            adapter=cause.adapter,
            revision=cause.revision,
            event_type=event_type,
            actor=actor,
            occurred_at=occurred_at,
            environment=environment,
        )


def caused_envelope(
    *,
    cause_id: str,
    correlation_id: str,
    adapter: str,
    revision: str,
    event_type: str,
    actor: Actor,
    occurred_at: datetime,
    environment: str = "",
    discriminator: str = "",
) -> Envelope:
    """The envelope of an event caused by the event `cause_id`, its id derived from the cause.

    A redelivered cause yields the same id, so a duplicate is visible (`shared.ids`).
    `discriminator` tells apart several events of one type from one cause (the activator's
    moves of two revisions); it becomes part of the id as `event_type:discriminator`.
    """
    kind = f"{event_type}:{discriminator}" if discriminator else event_type
    return Envelope(
        event_id=derive_event_id(cause_id, kind, environment),
        adapter=adapter,
        revision=revision,
        environment=environment,
        occurred_at=occurred_at,
        actor=actor,
        causation_id=cause_id,
        correlation_id=correlation_id,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One result of a check: a stable code, how bad it is, and the evidence."""

    code: str
    severity: str  # "error" rejects; "warning" and "info" are recorded only
    message: str
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricResult:
    """One gated metric: the candidate's value, the baseline's, and the verdict."""

    name: str
    value: float
    baseline: float | None = None
    threshold: str = ""
    passed: bool
