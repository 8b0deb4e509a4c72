"""The activator's handlers: an approved revision starts its rollout; operators' commands
promote, expand, roll back and abort. Each answer is recorded under the cause's id."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from services.activator.analysis import AnalysisPolicy
from services.activator.deps import ActivatorDeps
from services.activator.fleet import ReplicasUnreachable, RolloutStopped
from services.activator.observations import note_unreachable, record_on_log
from services.activator.plans import (
    Outcome,
    Plan,
    Refused,
    RequestAction,
    Situation,
    Waiting,
    operator_refusal,
    plan_abort,
    plan_expand,
    plan_rollback,
    plan_rollout,
)
from services.activator.rollouts import CONSUMER, SERVICE_ACTOR, Decide, Request, execute
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.decisions import ConflictingDecision, UntrustedDecision, believed, conflict
from shared.events import (
    AbortCanary,
    CanaryExpanded,
    CanaryStarted,
    CommandHeader,
    ExpandCanary,
    PromoteRevision,
    RevisionActivated,
    RevisionApproved,
    RevisionQuarantined,
    RevisionRolledBack,
    RevisionSuperseded,
    RollbackRevision,
    RolloutFailed,
    RolloutStalled,
)
from shared.flow import ServiceFlow, Topic
from shared.kafka.dispatch import Handler, PermanentError
from shared.lifecycle import InvalidTransition
from shared.retention import RollbackRefused, check_rollback_target

log = structlog.get_logger(__name__)


async def attempt(deps: ActivatorDeps, request: Request, decide: Decide) -> str | None:
    """Carry the request out; None when committed, else the reason, recorded as its outcome."""
    bound = log.bind(
        adapter=request.adapter, environment=request.environment, cause_id=request.cause_id
    )
    evidence: Mapping[str, str] = {}
    try:
        await execute(deps, request, decide)
        deps.stalls.ended(request.cause_id, request.adapter, request.environment, failed=False)
        return None
    except Waiting as exc:
        outcome, reason = Outcome.WAITING, str(exc)
    except Refused as exc:
        outcome, reason = Outcome.REFUSED, str(exc)
    except RolloutStopped as exc:
        outcome, reason, evidence = Outcome.FAILED, str(exc), exc.evidence
    except InvalidTransition as exc:  # the registry's verdict on a plan made on stale state
        outcome, reason = Outcome.REFUSED, str(exc)
    except ReplicasUnreachable as exc:  # waited out by the dispatcher, but never silently
        await note_unreachable(deps, request, exc)
        raise
    bound.warning("rollout_" + outcome, action=request.action, reason=reason)
    if outcome is Outcome.FAILED:  # on the log before the outcome row: a retry repeats it
        await record_on_log(
            deps,
            request,
            RolloutFailed,
            action=request.action,
            reason=reason,
            evidence=dict(evidence),
            cause_id=request.cause_id,
        )
    failed = outcome is Outcome.FAILED
    deps.stalls.ended(request.cause_id, request.adapter, request.environment, failed=failed)
    await deps.store.record_outcome(
        cause_id=request.cause_id,
        adapter=request.adapter,
        environment=request.environment,
        action=request.action,
        revision=request.revision,
        outcome=outcome,
        detail=reason,
        principal=request.actor.principal,
        evidence=evidence,
    )
    return reason


async def _believed(event: RevisionApproved, deps: ActivatorDeps) -> RevisionApproved:
    """The registry's copy of a decision the activator believes: signed by a trusted key
    and committed by the registry; a forged or conflicting decision is refused loudly (a
    log line, the failures metric, the dead-letter topic)."""
    envelope = event.envelope
    bound = log.bind(
        adapter=envelope.adapter, environment=envelope.environment, event_id=envelope.event_id
    )
    try:
        decision = await believed(event, deps.registry, deps.decision_keys())
    except UntrustedDecision as exc:
        bound.error("decision_untrusted", revision=envelope.revision, reason=str(exc))
        raise
    if not isinstance(decision, RevisionApproved):
        raise UntrustedDecision(f"decision_differs: {envelope.event_id} is no approval")
    kept = await deps.store.approvers(envelope.adapter, envelope.revision, envelope.environment)
    reason = conflict(kept, decision.approvers)
    if reason is not None:
        bound.error("decision_conflict", revision=envelope.revision, reason=reason)
        raise ConflictingDecision(reason)
    return decision


def stale_approval(decision: RevisionApproved, spec: EnvironmentSpec) -> str | None:
    """Why an approval no longer holds where it was made: the environment's serving
    contract changed since (the decision signed the one it was made for); None if it holds
    or the decision predates recording it."""
    made_for, serving = decision.serving_contract, ServingContract.of_environment(spec).digest()
    if not made_for or made_for == serving:
        return None
    return (
        f"stale approval: it was made for {spec.name}'s serving contract {made_for}, and the "
        f"environment now serves {serving}; re-evaluate and approve again"
    )


async def on_revision_approved(event: RevisionApproved, deps: ActivatorDeps) -> None:
    envelope = event.envelope
    decision = await _believed(event, deps)
    await deps.store.record_approvers(
        envelope.adapter,
        envelope.revision,
        envelope.environment,
        decision.approvers,
        envelope.event_id,
        envelope.occurred_at,
    )
    if await deps.registry.handled(CONSUMER, envelope.event_id):
        return
    if await deps.store.outcome(envelope.event_id) is not None:
        return

    async def decide(situation: Situation, spec: EnvironmentSpec, policy: AnalysisPolicy) -> Plan:
        stale = stale_approval(decision, spec)
        if stale is not None:
            raise Refused(stale)
        if not policy.auto_rollout:
            raise Waiting(
                f"approved; {spec.name} starts rollouts by hand: waiting for `adapterctl "
                f"promote {envelope.adapter} {envelope.revision[:19]} --environment {spec.name}`"
            )
        return plan_rollout(situation, envelope.revision, reason="approved: the policy rolls out")

    request = Request(
        cause_id=envelope.event_id,
        action=RequestAction.APPROVED,
        adapter=envelope.adapter,
        environment=envelope.environment,
        revision=envelope.revision,
        actor=SERVICE_ACTOR,
        correlation_id=envelope.correlation_id,
    )
    if await attempt(deps, request, decide) is not None:
        await deps.registry.record_handled(CONSUMER, envelope.event_id)


def _request(header: CommandHeader, action: RequestAction, revision: str | None) -> Request:
    return Request(
        cause_id=header.command_id,
        action=action,
        adapter=header.adapter,
        environment=header.environment,
        revision=revision,
        actor=header.actor,
        correlation_id=header.correlation_id,
    )


async def _command(deps: ActivatorDeps, request: Request, decide: Decide) -> None:
    """A refused or failed command is dead-lettered with its reason, after it is recorded."""
    if await deps.store.outcome(request.cause_id) is not None:
        return  # redelivered: answered already
    reason = await attempt(deps, request, decide)
    if reason is not None:
        raise PermanentError(reason)


async def _operator_may(
    deps: ActivatorDeps, request: Request, spec: EnvironmentSpec, revision: str
) -> None:
    held = await deps.roles_of(request.actor.principal)
    approvers = await deps.store.approvers(request.adapter, revision, request.environment)
    persons = await deps.persons_of([request.actor.principal, *approvers])
    refusal = operator_refusal(
        request.actor, held, approvers, spec.approver_may_operate, revision, persons
    )
    if refusal:
        raise Refused(refusal)


async def on_promote(command: PromoteRevision, deps: ActivatorDeps) -> None:
    request = _request(command.header, RequestAction.PROMOTE, command.revision)

    async def decide(situation: Situation, spec: EnvironmentSpec, _: AnalysisPolicy) -> Plan:
        await _operator_may(deps, request, spec, command.revision)
        return plan_rollout(
            situation,
            command.revision,
            percent=command.canary_percent,
            tenants=command.tenants,
            reason=command.header.reason,
        )

    await _command(deps, request, decide)


async def on_expand(command: ExpandCanary, deps: ActivatorDeps) -> None:
    request = _request(command.header, RequestAction.EXPAND, command.revision)

    async def decide(situation: Situation, spec: EnvironmentSpec, _: AnalysisPolicy) -> Plan:
        await _operator_may(deps, request, spec, command.revision)
        return plan_expand(
            situation,
            command.revision,
            command.traffic_percent,
            reason=command.header.reason or "expanded by an operator",
            evidence={"operator": command.header.actor.principal},
        )

    await _command(deps, request, decide)


async def on_rollback(command: RollbackRevision, deps: ActivatorDeps) -> None:
    request = _request(command.header, RequestAction.ROLLBACK, command.to_revision)

    async def decide(situation: Situation, spec: EnvironmentSpec, _: AnalysisPolicy) -> Plan:
        await _operator_may(deps, request, spec, command.to_revision or "")
        pointer = situation.pointer
        target = command.to_revision or (None if pointer.canary else pointer.rollback_target)
        refusal = None
        if target is not None and target != pointer.active:
            try:
                await check_rollback_target(deps.registry, request.adapter, target, spec.name)
            except RollbackRefused as exc:
                refusal = str(exc)
        return plan_rollback(
            situation,
            command.to_revision,
            reason=command.header.reason or f"rolled back by {command.header.actor.principal}",
            evidence={"operator": command.header.actor.principal},
            target_refusal=refusal,
        )

    await _command(deps, request, decide)


async def on_abort(command: AbortCanary, deps: ActivatorDeps) -> None:
    request = _request(command.header, RequestAction.ABORT, command.revision)

    async def decide(situation: Situation, spec: EnvironmentSpec, _: AnalysisPolicy) -> Plan:
        await _operator_may(deps, request, spec, "")
        return plan_abort(
            situation,
            command.revision or None,
            reason=command.header.reason or f"canary aborted by {command.header.actor.principal}",
            evidence={"operator": command.header.actor.principal},
        )

    await _command(deps, request, decide)


def handlers(deps: ActivatorDeps) -> dict[type, Handler]:
    async def approved(event: RevisionApproved) -> None:
        await on_revision_approved(event, deps)

    async def promote(command: PromoteRevision) -> None:
        await on_promote(command, deps)

    async def expand(command: ExpandCanary) -> None:
        await on_expand(command, deps)

    async def rollback(command: RollbackRevision) -> None:
        await on_rollback(command, deps)

    async def abort(command: AbortCanary) -> None:
        await on_abort(command, deps)

    return {
        RevisionApproved: approved,
        PromoteRevision: promote,
        ExpandCanary: expand,
        RollbackRevision: rollback,
        AbortCanary: abort,
    }


FLOW = ServiceFlow(
    service="activator",
    consumes=(Topic.LIFECYCLE, Topic.COMMANDS),
    handles=(
        RevisionApproved,
        PromoteRevision,
        ExpandCanary,
        RollbackRevision,
        AbortCanary,
    ),
    emits=(
        CanaryStarted,
        CanaryExpanded,
        RevisionSuperseded,
        RevisionActivated,
        RevisionRolledBack,
        RevisionQuarantined,
        RolloutFailed,
        RolloutStalled,
    ),
    inputs=(
        "canary analysis on a timer",
        "replicas over HTTP",
        "HTTP: rollout commands issued, replicas and analysis settings, by an operator's token",
    ),
)
