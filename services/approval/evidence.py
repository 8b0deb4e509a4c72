"""The evidence an approver decides on: the manifest (recipe, data scope, files), the
validator's findings, the evaluation compared with the baseline, metric by metric and
output by output, and the serving revision beside the candidate.

The gated metrics come from the RevisionEvaluated event itself (the report's `gates` when
the event has none); the report's other metrics (`report.py`) are shown beside them,
ungated, and its `performance` says which backend, device and dtype produced each
performance figure, after what warm-up, under what pressure.

A revision that failed evaluation has no row in the read model; its evidence comes from its
RevisionEvaluationFailed in the registry (the cause, the gates and their findings) and the
report, if it wrote one, and is shown read-only. The serving revision it was compared with
comes from `serving.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.approval.comparison import compare_scopes
from services.approval.ports import ApprovalReads, DecisionRow, Evaluation, Metric
from services.approval.report import (
    EvidenceUnreadable,
    compare_outputs,
    finite,
    measurement,
    read_report,
    report_gates,
    suite_gates,
    ungated_metrics,
)
from services.approval.serving import read_manifest, serving_revision
from services.approval.verdicts import better_direction, verdict_of
from services.approval.views import (
    BallotView,
    DecisionView,
    Evidence,
    FileView,
    FindingView,
    ManifestView,
    MetricComparison,
)
from shared.artifacts import ArtifactStore
from shared.events import Finding, RevisionEvaluationFailed
from shared.manifest import Manifest
from shared.registry.port import Catalogue, Registry


@dataclass(frozen=True, slots=True)
class EvidenceSources:
    registry: Registry
    readmodel: ApprovalReads
    catalogue: Catalogue
    store: ArtifactStore
    max_report_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """One evaluation as the page shows it: the read model's row of a RevisionEvaluated, or
    the registry's RevisionEvaluationFailed (whose report may be missing)."""

    report_digest: str | None
    report_uri: str | None
    suite_digest: str | None
    backend: str | None
    baseline_revision: str | None
    evaluated_at: datetime
    metrics: tuple[Metric, ...]
    failure_cause: str | None = None
    findings: tuple[Finding, ...] = ()


def measured_of(evaluation: Evaluation) -> Measured:
    return Measured(
        report_digest=evaluation.report_digest,
        report_uri=evaluation.report_uri,
        suite_digest=evaluation.suite_digest,
        backend=evaluation.backend,
        baseline_revision=evaluation.baseline_revision,
        evaluated_at=evaluation.evaluated_at,
        metrics=evaluation.metrics,
    )


def failure_of(event: RevisionEvaluationFailed) -> Measured:
    """A failed evaluation; a metric not measured (NaN) reads as None, as the read model's."""
    return Measured(
        report_digest=event.report_digest,
        report_uri=event.report_uri,
        suite_digest=event.suite_digest,
        backend=None,
        baseline_revision=event.baseline_revision,
        evaluated_at=event.envelope.occurred_at,
        metrics=tuple(
            Metric(
                name=m.name,
                value=finite(m.value),
                baseline=finite(m.baseline),
                threshold=m.threshold,
                passed=m.passed,
            )
            for m in event.metrics
        ),
        failure_cause=event.cause,
        findings=tuple(event.findings),
    )


async def measured(
    sources: EvidenceSources, adapter: str, revision: str, environment: str
) -> Measured | None:
    """The revision's evaluation in `environment`, passed or failed; None if there is none."""
    evaluation = await sources.readmodel.evaluation(adapter, revision, environment)
    if evaluation is not None:
        return measured_of(evaluation)
    failures = [
        e
        for e in await sources.registry.events(adapter, revision, types=(RevisionEvaluationFailed,))
        if isinstance(e, RevisionEvaluationFailed) and e.envelope.environment == environment
    ]
    return failure_of(failures[-1]) if failures else None


def compare_metrics(
    metrics: Sequence[Metric], suite_gates: Mapping[str, Any] | None = None
) -> list[MetricComparison]:
    rows = []
    for m in metrics:
        delta = m.value - m.baseline if m.value is not None and m.baseline is not None else None
        verdict, note = verdict_of(
            gated=True, passed=m.passed, threshold=m.threshold, baseline=m.baseline
        )
        rows.append(
            MetricComparison(
                name=m.name,
                candidate=m.value,
                baseline=m.baseline,
                delta=delta,
                threshold=m.threshold,
                passed=m.passed,
                greater_is_better=better_direction(m.name, m.threshold, suite_gates),
                verdict=verdict,
                verdict_note=note,
            )
        )
    return rows


def manifest_view(manifest: Manifest) -> ManifestView:
    return ManifestView(
        base_model_id=manifest.base_model_id,
        base_model_revision=manifest.base_model_revision,
        tokenizer_revision=manifest.tokenizer_revision,
        tokenizer_hash=manifest.tokenizer_hash,
        chat_template_hash=manifest.chat_template_hash,
        quantization_profile=manifest.quantization_profile,
        target_environments=list(manifest.target_environments),
        source_uri=manifest.source_uri,
        files=[FileView(path=f.path, sha256=f.sha256, size=f.size) for f in manifest.files],
    )


async def gather(
    sources: EvidenceSources, adapter: str, revision: str, environment: str
) -> Evidence | None:
    """Everything about one revision in one environment; None if it was never evaluated there."""
    reads = sources.readmodel
    evaluation = await measured(sources, adapter, revision, environment)
    record = await sources.registry.revision(adapter, revision)
    if evaluation is None or record is None:
        return None
    problems: list[str] = []
    manifest = None
    if record.manifest_digest:
        manifest = await read_manifest(sources.store, record.manifest_digest, problems)
    report: dict[str, Any] = {}
    if evaluation.report_digest:
        try:
            report = await asyncio.to_thread(
                read_report, sources.store, evaluation.report_digest, sources.max_report_bytes
            )
        except EvidenceUnreadable as exc:
            problems.append(str(exc))
    changed, unchanged = compare_outputs(report)
    gates = suite_gates(report)
    gated = compare_metrics(evaluation.metrics or report_gates(report), gates)
    serving, serving_scopes = None, None
    if evaluation.baseline_revision:
        serving, serving_scopes = await serving_revision(
            sources.registry,
            reads,
            sources.store,
            adapter=adapter,
            revision=evaluation.baseline_revision,
            environment=environment,
        )
    scopes = (dict(manifest.recipe), dict(manifest.data_scope)) if manifest else ({}, {})
    submission = await reads.submission(adapter, revision)
    spec = await sources.catalogue.environment(environment)
    decided = await reads.decision(adapter, revision, environment)
    state = record.status.track(environment)
    return Evidence(
        adapter=adapter,
        revision=revision,
        environment=environment,
        state=state.value if state else None,
        outcome="evaluation_failed" if evaluation.failure_cause is not None else "evaluated",
        failure_cause=evaluation.failure_cause,
        evaluation_findings=_findings(evaluation.findings),
        submitter=record.submitter,
        submitted_at=record.created_at,
        manifest_digest=record.manifest_digest,
        report_digest=evaluation.report_digest,
        report_uri=evaluation.report_uri,
        suite_digest=evaluation.suite_digest,
        backend=evaluation.backend,
        baseline_revision=evaluation.baseline_revision,
        evaluated_at=evaluation.evaluated_at,
        serving=serving,
        comparison=compare_scopes(serving_scopes, scopes),
        manifest=manifest_view(manifest) if manifest else None,
        recipe=scopes[0],
        data_scope=scopes[1],
        findings=_findings(submission.findings if submission else ()),
        metrics=[*gated, *ungated_metrics(report, [m.name for m in gated])],
        measurement=measurement(report),
        changed_outputs=changed,
        unchanged_outputs=unchanged,
        evidence_problems=problems,
        required_approvals=max(1, spec.required_approvals) if spec else 1,
        ballots=[
            BallotView(
                principal=b.principal,
                decision=b.decision.value,
                comment=b.comment,
                cast_at=b.cast_at,
            )
            for b in await reads.ballots(adapter, revision, environment)
        ],
        decision=_decision_view(decided),
    )


def _findings(findings: Iterable[Finding]) -> list[FindingView]:
    return [
        FindingView(code=f.code, severity=f.severity, message=f.message, evidence=f.evidence)
        for f in findings
    ]


def _decision_view(row: DecisionRow | None) -> DecisionView | None:
    if row is None:
        return None
    return DecisionView(
        decision="approved" if row.decision == "approved" else "denied",
        approvers=list(row.approvers),
        event_id=row.event_id,
        key_id=row.key_id,
        decided_at=row.decided_at,
    )


def gates_passed(evaluation: Evaluation) -> bool:
    return all(m.passed for m in evaluation.metrics)
