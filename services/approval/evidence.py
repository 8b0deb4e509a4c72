"""The evidence an approver decides on: the manifest (recipe, data scope, files), the
validator's findings, and the evaluation compared with the baseline, metric by metric and
output by output.

The evaluation report (`adapters.evaluation_report.v1`, written by the evaluator) is a JSON
blob in the artifact store under the event's `report_digest` (`sha256:` and the hex SHA-256
of its bytes). From it this module reads `items` (each with `id`, `prompt` as chat turns,
and `candidate`, `baseline`, `base` objects holding the `output` text) and `metrics`
(`{"candidate": {...}, "baseline": {...}}`). The gated metrics come from the
RevisionEvaluated event itself (the report's `gates` when the event has none); the
report's other metrics are shown beside them, ungated.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.approval.ports import ApprovalReads, DecisionRow, Evaluation, Metric
from services.approval.views import (
    BallotView,
    DecisionView,
    Evidence,
    FileView,
    FindingView,
    ManifestView,
    MetricComparison,
    OutputComparison,
)
from shared.artifacts import ArtifactStore, StoreError
from shared.manifest import Manifest
from shared.registry.port import Catalogue, Registry


class EvidenceUnreadable(Exception):
    """A piece of evidence the store cannot give back intact."""


@dataclass(frozen=True, slots=True)
class EvidenceSources:
    registry: Registry
    readmodel: ApprovalReads
    catalogue: Catalogue
    store: ArtifactStore
    max_report_bytes: int


def compare_metrics(metrics: Sequence[Metric]) -> list[MetricComparison]:
    rows = []
    for m in metrics:
        delta = m.value - m.baseline if m.value is not None and m.baseline is not None else None
        rows.append(
            MetricComparison(
                name=m.name,
                candidate=m.value,
                baseline=m.baseline,
                delta=delta,
                threshold=m.threshold,
                passed=m.passed,
            )
        )
    return rows


def report_gates(report: Mapping[str, Any]) -> list[Metric]:
    """The report's own gate verdicts, for an event that carried none; bad rows skipped."""
    found = []
    for item in report.get("gates") or []:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            found.append(
                Metric(
                    name=item["name"],
                    value=_number(item.get("value")),
                    baseline=_number(item.get("baseline")),
                    threshold=str(item.get("threshold", "")),
                    passed=bool(item.get("passed", False)),
                )
            )
    return found


def ungated_metrics(report: Mapping[str, Any], gated: Sequence[str]) -> list[MetricComparison]:
    """The report's measured metrics that no gate judged, candidate beside baseline."""
    measured = report.get("metrics")
    if not isinstance(measured, Mapping):
        return []
    candidate = measured.get("candidate") if isinstance(measured.get("candidate"), Mapping) else {}
    baseline = measured.get("baseline") if isinstance(measured.get("baseline"), Mapping) else {}
    rows = []
    for name in sorted(set(candidate or {}) | set(baseline or {})):
        if name in gated or not isinstance(name, str):
            continue
        value, before = _number((candidate or {}).get(name)), _number((baseline or {}).get(name))
        rows.append(
            MetricComparison(
                name=name,
                candidate=value,
                baseline=before,
                delta=value - before if value is not None and before is not None else None,
                threshold="",
                passed=True,
                gated=False,
            )
        )
    return rows


def compare_outputs(report: Mapping[str, Any]) -> tuple[list[OutputComparison], int]:
    """(outputs the candidate changed, how many it left unchanged), each against the
    baseline's output, or the base model's where the environment has no baseline yet."""
    items = report.get("items") or report.get("outputs") or []
    changed, unchanged = [], 0
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, Mapping):
            continue
        candidate = _text(item.get("candidate"))
        if candidate is None:
            continue  # an item scored without generating (a log-likelihood item)
        reference: Literal["baseline", "base"] = "baseline"
        against = _text(item.get("baseline"))
        if against is None and _text(item.get("base")) is not None:
            reference, against = "base", _text(item.get("base"))
        if against == candidate:
            unchanged += 1
            continue
        changed.append(
            OutputComparison(
                id=str(item.get("id", index)),
                prompt=_prompt(item.get("prompt")),
                reference=reference,
                baseline=against,
                candidate=candidate,
            )
        )
    return changed, unchanged


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _text(value.get("output", value.get("text")))
    return None


def _prompt(value: Any) -> str:
    if isinstance(value, list):  # chat turns
        turns = [t for t in value if isinstance(t, Mapping)]
        return "\n".join(f"{t.get('role', '?')}: {t.get('content', '')}" for t in turns)
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def read_report(store: ArtifactStore, digest: str, max_bytes: int) -> dict[str, Any]:
    """The report JSON stored under `digest`, checked against it; bounded in size."""
    try:
        path = store.blob_path(digest.removeprefix("sha256:"))
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except (StoreError, OSError) as exc:
        raise EvidenceUnreadable(f"evaluation report {digest} is not in the store ({exc})") from exc
    if len(data) > max_bytes:
        raise EvidenceUnreadable(f"evaluation report {digest} exceeds {max_bytes} bytes")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise EvidenceUnreadable(f"evaluation report {digest} does not match its digest")
    try:
        report = json.loads(data)
    except ValueError as exc:
        raise EvidenceUnreadable(f"evaluation report {digest} is not JSON: {exc}") from exc
    if not isinstance(report, dict):
        raise EvidenceUnreadable(f"evaluation report {digest} is not a JSON object")
    return report


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
    evaluation = await reads.evaluation(adapter, revision, environment)
    record = await sources.registry.revision(adapter, revision)
    if evaluation is None or record is None:
        return None
    problems: list[str] = []
    manifest = None
    if record.manifest_digest:
        try:
            manifest = await asyncio.to_thread(sources.store.get_manifest, record.manifest_digest)
        except (StoreError, OSError, ValueError) as exc:
            problems.append(f"manifest {record.manifest_digest} cannot be read: {exc}")
    report: dict[str, Any] = {}
    try:
        report = await asyncio.to_thread(
            read_report, sources.store, evaluation.report_digest, sources.max_report_bytes
        )
    except EvidenceUnreadable as exc:
        problems.append(str(exc))
    changed, unchanged = compare_outputs(report)
    gated = compare_metrics(evaluation.metrics or report_gates(report))
    submission = await reads.submission(adapter, revision)
    spec = await sources.catalogue.environment(environment)
    decided = await reads.decision(adapter, revision, environment)
    state = record.status.track(environment)
    return Evidence(
        adapter=adapter,
        revision=revision,
        environment=environment,
        state=state.value if state else None,
        submitter=record.submitter,
        manifest_digest=record.manifest_digest,
        report_digest=evaluation.report_digest,
        report_uri=evaluation.report_uri,
        suite_digest=evaluation.suite_digest,
        backend=evaluation.backend,
        baseline_revision=evaluation.baseline_revision,
        evaluated_at=evaluation.evaluated_at,
        manifest=manifest_view(manifest) if manifest else None,
        recipe=dict(manifest.recipe) if manifest else {},
        data_scope=dict(manifest.data_scope) if manifest else {},
        findings=[
            FindingView(code=f.code, severity=f.severity, message=f.message, evidence=f.evidence)
            for f in (submission.findings if submission else ())
        ],
        metrics=[*gated, *ungated_metrics(report, [m.name for m in gated])],
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
