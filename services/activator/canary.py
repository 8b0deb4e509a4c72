"""The analysis timer's work: judge every running canary on fresh metrics (from the fleet's
metrics source: replicas, a gateway or Prometheus), act on the verdict, and keep every
replica loaded and routed as the registry says."""

from __future__ import annotations

from dataclasses import replace

import structlog

from services.activator.analysis import AnalysisPolicy, Decision, Verdict, analyse
from services.activator.deps import ActivatorDeps
from services.activator.fleet import ReplicasUnreachable, RolloutStopped
from services.activator.handlers import attempt
from services.activator.metrics import (
    observe,
    rebase,
    snapshot_from_json,
    snapshot_to_json,
    window,
)
from services.activator.plans import (
    Plan,
    Refused,
    RequestAction,
    Situation,
    plan_expand,
    plan_rollback,
)
from services.activator.ports import TargetError
from services.activator.rollouts import (
    SERVICE_ACTOR,
    Request,
    begin_canary_step,
    policy_for,
    quarantine,
)
from services.activator.routing import lora_name
from shared.artifacts import IntegrityError, StoreError
from shared.catalogue import EnvironmentSpec
from shared.ids import derive_event_id
from shared.pointers import EnvironmentPointer
from shared.registry.port import ConcurrentTransition
from shared.registry.store import UNAVAILABLE

log = structlog.get_logger(__name__)

# What a round waits out (ADR 0008): the registry restarting, a replica that does not
# answer (or a metrics source that does not: MetricsUnavailable is a TargetError), a
# writer that moved the revision first. Anything else is a bug: it crashes the
# service, and its supervisor restarts it.
OUTAGES: tuple[type[Exception], ...] = (
    *UNAVAILABLE,
    TargetError,
    ReplicasUnreachable,
    ConcurrentTransition,
)
# What one replica's reload may fail on (a manifest the store cannot read, a contract the
# replica does not serve, a replica that refuses): logged, tried again next round.
RELOAD_FAILURES: tuple[type[Exception], ...] = (
    StoreError,
    ValueError,
    RolloutStopped,
    ReplicasUnreachable,
    TargetError,
)


async def tick(deps: ActivatorDeps) -> None:
    """One round: every canary analysed, every served environment reconciled."""
    try:
        canaries = await deps.store.canaries()
        environments = await deps.store.served_environments()
    except OUTAGES as exc:  # the registry is away (restarting): the next tick retries
        log.error("analysis_round_skipped", error=repr(exc))
        return
    for adapter, environment, pointer in canaries:
        try:
            await analyse_canary(deps, adapter, environment, pointer)
        except OUTAGES as exc:  # registry or replica trouble: the next tick retries
            log.error(
                "canary_analysis_failed", adapter=adapter, environment=environment, error=repr(exc)
            )
    for environment in environments:
        try:
            await reconcile(deps, environment)
        except OUTAGES as exc:
            log.error("reconcile_failed", environment=environment, error=repr(exc))


async def analyse_canary(
    deps: ActivatorDeps, adapter: str, environment: str, pointer: EnvironmentPointer
) -> None:
    """Judge the canary's step and act on the verdict. The pointer given may be stale (read
    at the round's start): the judging reads it again under the (adapter, environment)
    lock, which every rollout holds while it commits and begins the next step."""
    spec = await deps.catalogue.environment(environment)
    if pointer.canary is None or spec is None:
        return
    policy = await policy_for(deps, spec)
    async with deps.lock(adapter, environment):
        judged = await judge_step(deps, adapter, environment, policy)
    if judged is None:
        return
    pointer, decision = judged
    canary = pointer.canary
    if decision.verdict is Verdict.hold or canary is None:
        return
    log.info(
        "canary_verdict",
        adapter=adapter,
        environment=environment,
        verdict=decision.verdict.value,
        reason=decision.reason,
    )
    step_key = f"{adapter}/{environment}/{canary}/{pointer.canary_percent}"

    async def decide(situation: Situation, _: EnvironmentSpec, __: AnalysisPolicy) -> Plan:
        moved = situation.pointer
        if (moved.canary, moved.canary_percent) != (canary, pointer.canary_percent):
            raise Refused("the canary moved while it was analysed: judged again next round")
        reason = f"canary analysis: {decision.reason}"
        if decision.verdict is Verdict.roll_back:
            return plan_rollback(situation, None, reason=reason, evidence=decision.evidence)
        return plan_expand(
            situation,
            canary,
            decision.next_percent or 100,
            reason=reason,
            evidence=decision.evidence,
        )

    await attempt(
        deps,
        Request(
            cause_id=f"analysis/{step_key}/{decision.verdict.value}",
            action=RequestAction.of_analysis(decision.verdict),
            adapter=adapter,
            environment=environment,
            revision=canary,
            actor=SERVICE_ACTOR,
            correlation_id=derive_event_id(f"canary/{adapter}/{environment}/{canary}", "analysis"),
        ),
        decide,
    )


async def judge_step(
    deps: ActivatorDeps, adapter: str, environment: str, policy: AnalysisPolicy
) -> tuple[EnvironmentPointer, Decision] | None:
    """The verdict on the canary's current step, noted as its evidence; None when the step
    only begins now. Call it under the (adapter, environment) lock."""
    pointer = await deps.registry.pointer(adapter, environment)
    canary = pointer.canary
    if canary is None:
        return None
    step = await deps.store.canary_step(adapter, environment)
    if step is None or (step.revision, step.traffic_percent) != (canary, pointer.canary_percent):
        await begin_canary_step(deps, adapter, environment, canary, pointer.canary_percent)
        return None
    now = deps.clock()
    # The source itself, not `fleet.scrape`: one that cannot be read (a gateway or a
    # Prometheus server away: MetricsUnavailable, an outage) holds the step with its last
    # evidence, rather than noting zero samples as if nothing had been served.
    scraped = await deps.fleet.metrics.snapshot(environment)
    before = snapshot_from_json(step.baseline)
    counted = window(scraped, before)
    rebased = rebase(scraped, before)
    if rebased != before:  # a replica's first scrape, or a restart: its new baseline
        await deps.store.start_canary_step(replace(step, baseline=snapshot_to_json(rebased)))
    decision = analyse(
        policy,
        pointer.canary_percent,
        observe(counted.get(lora_name(adapter, canary))),
        observe(counted.get(lora_name(adapter, pointer.active))) if pointer.active else None,
        (now - step.step_started_at).total_seconds(),
    )
    await deps.store.note_decision(adapter, environment, decision.evidence)
    return pointer, decision


async def reconcile(deps: ActivatorDeps, environment: str) -> None:
    """Reload what a restarted replica lost, then push the routing again (idempotent)."""
    pointers, _ = await deps.store.pointers(environment)
    spec = await deps.catalogue.environment(environment)
    wanted = {
        lora_name(adapter, revision): (adapter, revision)
        for adapter, pointer in pointers.items()
        for revision in (pointer.active, pointer.canary)
        if revision
    }
    reachable = []
    for target in await deps.fleet.targets(environment):
        try:
            listed = await target.models()
        except TargetError as exc:
            log.warning("replica_unreachable", url=target.url, error=str(exc))
            continue
        reachable.append(target)
        for name in sorted(set(wanted) - set(listed)):
            adapter, revision = wanted[name]
            record = await deps.registry.revision(adapter, revision)
            if spec is None or record is None or not record.manifest_digest:
                continue
            try:
                manifest = deps.artifacts.get_manifest(record.manifest_digest)
                try:  # re-verified before a restarted replica reads a byte of it
                    deps.artifacts.materialize(manifest)
                except IntegrityError as exc:
                    await quarantine(deps, record, manifest, exc, derive_event_id("reload", name))
                    raise
                await deps.fleet.check_contract([target], spec, manifest)
                await target.load(name, deps.serving_path(manifest))
                log.info("replica_reloaded", url=target.url, lora_name=name)
            except RELOAD_FAILURES as exc:
                log.error("replica_reload_failed", url=target.url, lora_name=name, error=str(exc))
    await deps.fleet.publish(environment, reachable)
