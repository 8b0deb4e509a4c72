"""Carrying out one decision: read, decide, load and verify, commit, then move the traffic.

Per (adapter, environment) one decision at a time in this process; across processes the
registry's compare-and-set decides, and deterministic event ids make a repeat a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from services.activator.analysis import AnalysisPolicy, opening
from services.activator.deps import ActivatorDeps
from services.activator.metrics import snapshot_to_json
from services.activator.plans import Outcome, Plan, Refused, RequestAction, Situation
from services.activator.ports import CanaryStep
from shared.artifacts import IntegrityError, StoreError
from shared.catalogue import EnvironmentSpec
from shared.events import Actor, caused_envelope
from shared.lifecycle import InvalidTransition
from shared.manifest import Manifest
from shared.quarantine import quarantined
from shared.registry.port import Committed, RevisionRecord, Step

log = structlog.get_logger(__name__)

CONSUMER = "activator"
SERVICE_ACTOR = Actor(principal="activator", role="service")

Decide = Callable[[Situation, EnvironmentSpec, AnalysisPolicy], Awaitable[Plan]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """Who asks what about which adapter, and the id that makes the answer idempotent."""

    cause_id: str
    action: RequestAction
    adapter: str
    environment: str
    revision: str | None
    actor: Actor
    correlation_id: str


async def policy_for(deps: ActivatorDeps, spec: EnvironmentSpec) -> AnalysisPolicy:
    settings = await deps.store.analysis_settings(spec.name)
    return AnalysisPolicy.from_settings(spec.canary_steps, settings)


def _manifest(deps: ActivatorDeps, record: RevisionRecord | None, revision: str) -> Manifest:
    if record is None or not record.manifest_digest:
        raise Refused(f"{revision} has no manifest in the registry: it cannot be served")
    try:
        return deps.artifacts.get_manifest(record.manifest_digest)
    except (StoreError, ValueError) as exc:
        raise Refused(f"the manifest of {revision} cannot be read: {exc}") from exc


async def quarantine(
    deps: ActivatorDeps,
    record: RevisionRecord | None,
    manifest: Manifest,
    error: IntegrityError,
    cause_id: str,
) -> None:
    """Commit the revision's quarantine (once: a second finding of it changes nothing)."""
    envelope = caused_envelope(
        cause_id=cause_id,
        correlation_id=cause_id,
        adapter=manifest.adapter,
        revision=manifest.revision,
        environment="",
        event_type="RevisionQuarantined",
        actor=SERVICE_ACTOR,
        occurred_at=datetime.now(UTC),
    )
    event = quarantined(envelope, "activator", manifest.digest, error.problems)
    log.error(
        "revision_quarantined",
        adapter=manifest.adapter,
        revision=manifest.revision,
        findings=[f.message for f in event.findings],
    )
    try:
        await deps.registry.commit([Step(event, expected_version=_version(record))])
    except InvalidTransition as exc:
        log.info("quarantine_already_recorded", revision=manifest.revision, detail=str(exc))


def _version(record: RevisionRecord | None) -> int | None:
    return record.version if record else None


def _events(request: Request, plan: Plan, fleet_evidence: dict[str, str]) -> list[Any]:
    events = []
    for move in plan.moves:
        fields = dict(move.fields)
        if "evidence" in fields:
            fields["evidence"] = {**fleet_evidence, **fields["evidence"]}
        envelope = caused_envelope(
            cause_id=request.cause_id,
            correlation_id=request.correlation_id,
            adapter=request.adapter,
            revision=move.revision,
            environment=request.environment,
            event_type=move.event.__name__,
            discriminator=move.revision,  # a rollback moves two revisions in one command
            actor=request.actor,
            occurred_at=datetime.now(UTC),
        )
        events.append(move.event(envelope=envelope, **fields))
    return events


async def execute(deps: ActivatorDeps, request: Request, decide: Decide) -> Committed:
    """Decide under the lock, make every replica ready, commit, then route and prune.

    Raises Refused or RolloutStopped (nothing committed, no traffic moved); registry errors
    (a concurrent transition) and ReplicasUnreachable (a replica down: an outage the
    dispatcher waits out) propagate so the request is carried out again on fresh state.
    """
    adapter, environment = request.adapter, request.environment
    started = time.perf_counter()
    async with deps.lock(adapter, environment):
        spec = await deps.catalogue.environment(environment)
        if spec is None:
            raise Refused(f"environment {environment!r} is not in the catalogue")
        pointer = await deps.registry.pointer(adapter, environment)
        named = {request.revision, pointer.active, pointer.canary, pointer.rollback_target}
        records = {r: await deps.registry.revision(adapter, r) for r in named if r}
        policy = await policy_for(deps, spec)
        situation = Situation(
            environment=environment,
            pointer=pointer,
            statuses={r: rec.status if rec else None for r, rec in records.items()},
            steps=policy.steps,
        )
        plan = await decide(situation, spec, policy)
        if plan.traffic_share is not None:
            await deps.fleet.check_routing(environment, plan.traffic_share)
        loads = []
        for revision in plan.load:
            manifest = _manifest(deps, records.get(revision), revision)
            try:  # every byte re-verified before any replica is asked to load it
                deps.artifacts.materialize(manifest)
            except IntegrityError as exc:
                await quarantine(deps, records.get(revision), manifest, exc, request.cause_id)
                raise Refused(
                    f"{revision} is quarantined: its stored bytes changed after they were "
                    f"judged ({exc}); it will never be served"
                ) from exc
            except (StoreError, OSError) as exc:
                raise Refused(f"{revision} cannot be served: {exc}") from exc
            loads.append((manifest, deps.serving_path(manifest)))
        decided = time.perf_counter()
        evidence = await deps.fleet.prepare(environment, spec, loads)
        prepared = time.perf_counter()
        steps = [
            Step(e, expected_version=_version(records.get(e.envelope.revision)))
            for e in _events(request, plan, evidence)
        ]
        committed = await deps.registry.commit(steps, inbox=(CONSUMER, request.cause_id))
        done = time.perf_counter()
        await after_commit(deps, adapter, environment)
    log.info(
        "rollout_committed",
        adapter=adapter,
        environment=environment,
        action=plan.action,
        summary=plan.summary,
        duplicate=committed.duplicate,
        decide_ms=round((decided - started) * 1000, 1),
        prepare_ms=round((prepared - decided) * 1000, 1),
        commit_ms=round((done - prepared) * 1000, 1),
        route_ms=round((time.perf_counter() - done) * 1000, 1),
    )
    await deps.store.record_outcome(
        cause_id=request.cause_id,
        adapter=adapter,
        environment=environment,
        action=request.action,
        revision=request.revision,
        outcome=Outcome.COMMITTED,
        detail=plan.summary,
        principal=request.actor.principal,
        evidence=evidence,
    )
    return committed


async def after_commit(deps: ActivatorDeps, adapter: str, environment: str) -> None:
    """Traffic follows the registry: route every replica, start the canary step, unload the rest."""
    await deps.fleet.publish(environment)
    pointer = await deps.registry.pointer(adapter, environment)
    if pointer.canary:
        await begin_canary_step(deps, adapter, environment, pointer.canary, pointer.canary_percent)
    else:
        await deps.store.end_canary(adapter, environment)
    await deps.fleet.prune(environment, adapter)


async def begin_canary_step(
    deps: ActivatorDeps, adapter: str, environment: str, revision: str, percent: int
) -> None:
    """Observe the canary's step from now: every reachable replica's counters as its
    baseline, and, as its evidence, no samples yet. Called under the (adapter, environment)
    lock, so no judging of the step before interleaves with it."""
    baseline = await deps.fleet.scrape(environment)
    await deps.store.start_canary_step(
        CanaryStep(
            adapter=adapter,
            environment=environment,
            revision=revision,
            traffic_percent=percent,
            step_started_at=deps.clock(),
            baseline=snapshot_to_json(baseline),
        )
    )
    spec = await deps.catalogue.environment(environment)
    if spec is not None:
        policy = await policy_for(deps, spec)
        await deps.store.note_decision(adapter, environment, opening(policy, percent).evidence)
