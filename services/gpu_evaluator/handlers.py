"""Evaluator's handler: a validated revision is evaluated in each environment it was
checked for, against the revision serving there, and the verdicts commit together."""

from __future__ import annotations

import asyncio

import structlog

from services.gpu_evaluator.backends import backend_errors
from services.gpu_evaluator.deps import EvaluatorDeps
from services.gpu_evaluator.evaluation import EvaluationRun, Plan, run_evaluation, run_metrics
from services.gpu_evaluator.gates import decide_gate
from services.gpu_evaluator.load import ProfileError, load_profile
from services.gpu_evaluator.ports import (
    AdapterRef,
    BackendConfigError,
    BackendError,
    EvaluationBackend,
)
from services.gpu_evaluator.report import build_report, report_bytes, store_report
from services.gpu_evaluator.suites import SuiteError, load_suite
from shared.artifacts import IntegrityError, StoreError
from shared.events import (
    Actor,
    Envelope,
    Finding,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionQuarantined,
    RevisionValidated,
)
from shared.findings import FindingCode
from shared.flow import ServiceFlow, Topic
from shared.kafka.dispatch import Handler, PermanentError
from shared.lifecycle import State
from shared.manifest import Manifest
from shared.quarantine import quarantined
from shared.registry.port import RevisionRecord, Step

log = structlog.get_logger(__name__)

CONSUMER = "gpu_evaluator"
ACTOR = Actor(principal="gpu_evaluator", role="service")
Verdict = RevisionEvaluated | RevisionEvaluationFailed


async def on_revision_validated(event: RevisionValidated, deps: EvaluatorDeps) -> None:
    envelope = event.envelope
    bound = log.bind(
        adapter=envelope.adapter, revision=envelope.revision, event_id=envelope.event_id
    )
    if await deps.registry.handled(CONSUMER, envelope.event_id):
        return
    record = await deps.registry.revision(envelope.adapter, envelope.revision)
    if record is None:
        raise LookupError(f"{envelope.adapter}@{envelope.revision} not in the registry yet")
    pending = [e for e in event.checked_environments if record.status.track(e) is State.VALIDATED]
    if not pending or not record.manifest_digest:
        await deps.registry.record_handled(CONSUMER, envelope.event_id)
        return
    changed = _changed_on_disk(event, record, deps)
    if changed is not None:
        # Bytes changed since validation: nothing is judged, the revision leaves service.
        await deps.registry.commit(
            [Step(changed, expected_version=record.version)], inbox=(CONSUMER, envelope.event_id)
        )
        bound.error("revision_quarantined", findings=[f.message for f in changed.findings])
        return
    verdicts = [await evaluate_in(environment, event, record, deps) for environment in pending]
    # One commit for every environment: a crash half-way re-evaluates all, never skips one.
    # A ConcurrentTransition propagates: the dispatcher retries, and we re-read and decide.
    await deps.registry.commit(
        [Step(v, expected_version=record.version + i) for i, v in enumerate(verdicts)],
        inbox=(CONSUMER, envelope.event_id),
    )
    for verdict in verdicts:
        where = bound.bind(environment=verdict.envelope.environment)
        if isinstance(verdict, RevisionEvaluated):
            where.info("revision_evaluated", report=verdict.report_digest)
        else:
            where.warning(
                "revision_evaluation_failed",
                cause=verdict.cause,
                findings=[f.message for f in verdict.findings],
            )


async def evaluate_in(
    environment: str, event: RevisionValidated, record: RevisionRecord, deps: EvaluatorDeps
) -> Verdict:
    """The verdict in one environment. Setup errors (no suite, no base folder) dead-letter
    the event for an operator; the candidate's own failures become its verdict."""
    adapter, revision = record.adapter, record.revision
    spec = await deps.catalogue.environment(environment)
    if spec is None:
        return _failed(event, environment, deps, cause=f"environment {environment} is unknown")
    try:
        suite = load_suite(deps.suites_root, adapter, environment)
        profile = load_profile(deps.load_profiles_root, environment)
        backend = await asyncio.to_thread(deps.backends.backend_for, spec)
        baseline = await _baseline(adapter, environment, revision, deps)
    except (SuiteError, ProfileError, BackendConfigError) as exc:
        raise PermanentError(f"cannot evaluate in {environment}: {exc}") from exc
    try:
        manifest = deps.store.get_manifest(str(record.manifest_digest))
        # Verified here, before a single byte is judged: bytes changed since validation are
        # refused by name, never evaluated (and so never approved on this evidence).
        candidate = AdapterRef(adapter, revision, deps.store.materialize(manifest))
    except (StoreError, ValueError, OSError) as exc:
        changed = isinstance(exc, IntegrityError)
        code = FindingCode.ARTIFACT_CHANGED if changed else FindingCode.ARTIFACT_UNREADABLE
        finding = Finding(code=code, severity="error", message=str(exc)[:1000])
        return _failed(
            event,
            environment,
            deps,
            cause=f"{'artifact changed' if changed else 'artifact unreadable'}: {exc}"[:1000],
            suite_digest=suite.digest,
            baseline=baseline,
            findings=[finding],
        )
    plan = Plan(
        suite=suite, candidate=candidate, baseline=baseline, load=profile, slots=spec.max_loras
    )
    # OOM, a missing file, weights that do not load: the revision's verdict. Anything else
    # (BackendUnavailable, a bug of ours) propagates to the dispatcher's retries and
    # dead-letter topic, and the revision stays `validated`, evaluable again.
    try:
        with backend_errors():
            run = await asyncio.to_thread(run_evaluation, backend, plan)
    except BackendError as exc:
        failure = exc.__cause__ or exc
        return _failed(
            event,
            environment,
            deps,
            cause=f"backend {backend.name} failed: {type(failure).__name__}: {failure}"[:1000],
            suite_digest=suite.digest,
            baseline=baseline,
            findings=[_backend_finding(backend, failure)],
        )
    return await judge(event, environment, plan, run, manifest, backend, deps)


async def judge(
    event: RevisionValidated,
    environment: str,
    plan: Plan,
    run: EvaluationRun,
    manifest: Manifest,
    backend: EvaluationBackend,
    deps: EvaluatorDeps,
) -> Verdict:
    """Metrics, gates and the stored report make the verdict."""
    suite = plan.suite
    candidate, baseline = run_metrics(suite, run)
    decision = decide_gate(candidate, baseline, suite.gates)
    report = build_report(
        manifest=manifest,
        environment=environment,
        plan=plan,
        run=run,
        metrics={"candidate": candidate, "baseline": baseline},
        decision=decision,
        backend=backend.describe(),
        evaluated_at=deps.now(),
    )
    digest, uri = await asyncio.to_thread(
        store_report, deps.store, report_bytes(report), max_bytes=deps.report_max_bytes
    )
    baseline_revision = plan.baseline.revision if plan.baseline else None
    if decision.passed:
        return RevisionEvaluated(
            envelope=_envelope(event, environment, "RevisionEvaluated", deps),
            report_digest=digest,
            report_uri=uri,
            suite_digest=suite.digest,
            baseline_revision=baseline_revision,
            backend=backend.name,
            metrics=list(decision.metrics),
        )
    failed = decision.failed_metrics
    return RevisionEvaluationFailed(
        envelope=_envelope(event, environment, "RevisionEvaluationFailed", deps),
        cause=f"{len(failed)} gate(s) failed: {', '.join(failed)}",
        report_digest=digest,
        report_uri=uri,
        suite_digest=suite.digest,
        baseline_revision=baseline_revision,
        metrics=list(decision.metrics),
        findings=list(decision.findings),
    )


async def _baseline(
    adapter: str, environment: str, revision: str, deps: EvaluatorDeps
) -> AdapterRef | None:
    """The revision serving in the environment now, loadable; None for the first one."""
    active = (await deps.registry.pointer(adapter, environment)).active
    if active is None or active == revision:
        return None
    record = await deps.registry.revision(adapter, active)
    if record is None or not record.manifest_digest:
        raise PermanentError(f"active revision {active} of {adapter} has no manifest")
    try:
        manifest = deps.store.get_manifest(record.manifest_digest)
        return AdapterRef(adapter, active, deps.store.materialize(manifest))
    except (StoreError, OSError) as exc:
        # IntegrityError included: the serving revision's stored bytes changed on disk.
        raise PermanentError(f"baseline {active} is not loadable: {exc}") from exc


def _backend_finding(backend: EvaluationBackend, exc: BaseException) -> Finding:
    return Finding(
        code=FindingCode.BACKEND_ERROR,
        severity="error",
        message=f"the {backend.name} backend raised {type(exc).__name__}: {exc}"[:1000],
        evidence={"backend": backend.name, "exception": type(exc).__name__},
    )


def _changed_on_disk(
    event: RevisionValidated, record: RevisionRecord, deps: EvaluatorDeps
) -> RevisionQuarantined | None:
    """The quarantine to commit when the candidate's stored bytes no longer match its
    manifest; None when they do (or cannot be read: each environment's verdict says so)."""
    try:
        deps.store.materialize(deps.store.get_manifest(str(record.manifest_digest)))
    except IntegrityError as exc:
        envelope = _envelope(event, "", "RevisionQuarantined", deps)
        return quarantined(envelope, "evaluator", str(record.manifest_digest), exc.problems)
    except (StoreError, ValueError, OSError):
        return None
    return None


def _failed(
    event: RevisionValidated,
    environment: str,
    deps: EvaluatorDeps,
    *,
    cause: str,
    suite_digest: str | None = None,
    baseline: AdapterRef | None = None,
    findings: list[Finding] | None = None,
) -> RevisionEvaluationFailed:
    return RevisionEvaluationFailed(
        envelope=_envelope(event, environment, "RevisionEvaluationFailed", deps),
        cause=cause,
        suite_digest=suite_digest,
        baseline_revision=baseline.revision if baseline else None,
        findings=findings or [],
    )


def _envelope(
    event: RevisionValidated, environment: str, kind: str, deps: EvaluatorDeps
) -> Envelope:
    return Envelope.caused_by(
        event.envelope,
        event_type=kind,
        actor=ACTOR,
        occurred_at=deps.now(),
        environment=environment,
    )


def handlers(deps: EvaluatorDeps) -> dict[type, Handler]:
    async def validated(event: RevisionValidated) -> None:
        await on_revision_validated(event, deps)

    return {RevisionValidated: validated}


FLOW = ServiceFlow(
    service="gpu_evaluator",
    consumes=(Topic.LIFECYCLE,),
    handles=(RevisionValidated,),
    emits=(RevisionEvaluated, RevisionEvaluationFailed, RevisionQuarantined),
    inputs=(),
)
