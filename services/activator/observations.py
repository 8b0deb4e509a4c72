"""What the activator puts on the log about rollouts that cannot complete (ADR 0025): a
RolloutFailed when the replicas cannot serve the revision, one RolloutStalled when they
give no answer for longer than the stall threshold. Both record a fact and move no track."""

from __future__ import annotations

from typing import Any

import structlog

from services.activator.deps import ActivatorDeps
from services.activator.fleet import ReplicasUnreachable
from services.activator.rollouts import SERVICE_ACTOR, Request
from services.activator.stalls import unreachable_replicas
from shared.events import RolloutStalled, caused_envelope
from shared.lifecycle import InvalidTransition
from shared.registry.port import Step

log = structlog.get_logger(__name__)


async def note_unreachable(
    deps: ActivatorDeps, request: Request, error: ReplicasUnreachable
) -> None:
    """Start the request's stall clock; past the threshold, put one RolloutStalled on the log."""
    now = deps.clock()
    waiting = deps.stalls.unreachable(request.cause_id, request.adapter, request.environment, now)
    if not deps.stalls.due(request.cause_id, now):
        return
    replicas = unreachable_replicas(str(error))
    waited_s = int((now - waiting.since).total_seconds())
    committed = await record_on_log(
        deps,
        request,
        RolloutStalled,
        action=request.action,
        reason=f"replicas {', '.join(replicas)} unreachable for {waited_s} s: {error}",
        unreachable=replicas,
        stalled_since=waiting.since,
        waited_s=waited_s,
        evidence={"error": str(error)},
        cause_id=request.cause_id,
    )
    if committed:
        deps.stalls.reported(request.cause_id)


async def subject_of(deps: ActivatorDeps, request: Request) -> str | None:
    """The revision a rollout is about: the one it names, else the environment's canary,
    else its active revision (a rollback or abort that names none)."""
    if request.revision:
        return request.revision
    pointer = await deps.registry.pointer(request.adapter, request.environment)
    return pointer.canary or pointer.active


async def record_on_log(
    deps: ActivatorDeps, request: Request, kind: type[Any], **fields: Any
) -> bool:
    """Commit an observation of the request (ADR 0025); False when there is nothing to name
    or the lifecycle refuses it where the revision stands now (a quarantined revision)."""
    bound = log.bind(adapter=request.adapter, environment=request.environment)
    revision = await subject_of(deps, request)
    if revision is None:
        bound.warning("rollout_observation_unrecorded", kind=kind.__name__, reason="no revision")
        return False
    envelope = caused_envelope(
        cause_id=request.cause_id,
        correlation_id=request.correlation_id,
        adapter=request.adapter,
        revision=revision,
        environment=request.environment,
        event_type=kind.__name__,
        actor=SERVICE_ACTOR,
        occurred_at=deps.clock(),
    )
    try:
        await deps.registry.commit([Step(kind(envelope=envelope, **fields))])
    except InvalidTransition as exc:
        bound.warning("rollout_observation_refused", kind=kind.__name__, reason=str(exc))
        return False
    bound.warning("rollout_observation_recorded", kind=kind.__name__, revision=revision)
    return True
