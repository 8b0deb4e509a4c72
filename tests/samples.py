"""Realistic, deterministic sample events: `sample(cls)` for every class in the catalogue."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.events import (
    AbortCanary,
    Actor,
    AdapterTrained,
    BaseModelRef,
    CanaryExpanded,
    CanaryStarted,
    CommandHeader,
    DataScope,
    Envelope,
    ExpandCanary,
    Finding,
    ManifestArchived,
    MetricResult,
    PromoteRevision,
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
    RollbackRevision,
    RolloutFailed,
    RolloutStalled,
    TrainingRecipe,
    WeightsDeleted,
)

T = TypeVar("T")

# The golden files in tests/data/golden were written from these values: change them and
# newly written golden files differ from older ones (the released-versions test says which).
ADAPTER = "support-summarizer"
REVISION = "sha256:" + "3f2a" * 16
PREVIOUS_REVISION = "sha256:" + "9c1e" * 16
MANIFEST_DIGEST = "sha256:" + "7b04" * 16
REPORT_DIGEST = "sha256:" + "d25f" * 16
SUITE_DIGEST = "sha256:" + "a0c3" * 16
MOMENT = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f0b6d9e-3c1a-5b8e-9d2f-4a7c1e0b5d3a")


def event_id(*parts: str) -> str:
    """A deterministic id, the way services derive them from their causes."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def envelope(kind: str, **changes: Any) -> Envelope:
    values: dict[str, Any] = {
        "event_id": event_id(ADAPTER, REVISION, kind),
        "adapter": ADAPTER,
        "revision": REVISION,
        "environment": "staging",
        "occurred_at": MOMENT,
        "actor": Actor(principal="svc-registry", role="service"),
        "causation_id": event_id(ADAPTER, REVISION, "cause", kind),
        "correlation_id": event_id(ADAPTER, REVISION),
    }
    return Envelope(**(values | changes))


def header(command: str, **changes: Any) -> CommandHeader:
    values: dict[str, Any] = {
        "command_id": event_id(ADAPTER, REVISION, "command", command),
        "adapter": ADAPTER,
        "environment": "production",
        "actor": Actor(principal="alice@example.internal", role="operator"),
        "issued_at": MOMENT,
        "correlation_id": event_id(ADAPTER, REVISION),
        "reason": "weekly release train",
    }
    return CommandHeader(**(values | changes))


BASE = BaseModelRef(model_id="meta-llama/Llama-3.1-8B-Instruct", revision="0e9e39f" + "0" * 33)
FINDINGS = [
    Finding(
        code="rank_above_policy",
        severity="warning",
        message="LoRA rank 64 exceeds the recommended 32 for this base",
        evidence={"rank": "64", "recommended": "32"},
    ),
    Finding(code="safetensors_only", severity="info", message="all files are safetensors"),
]
METRICS = [
    MetricResult(
        name="rougeL", value=0.4217, baseline=0.4031, threshold=">= baseline", passed=True
    ),
    MetricResult(name="p95_latency_ms", value=182.5, threshold="<= 250", passed=True),
]
EVIDENCE = {"error_rate": "0.0012", "window": "PT30M"}

_BUILDERS: dict[type, Callable[[], Any]] = {
    AdapterTrained: lambda: AdapterTrained(
        event_id=event_id(ADAPTER, "trained"),
        adapter=ADAPTER,
        submitter="trainer-7@example.internal",
        submitted_at=MOMENT,
        base_model=BASE,
        tokenizer_revision="0e9e39f",
        tokenizer_hash="sha256:" + "11ab" * 16,
        chat_template_hash="sha256:" + "22cd" * 16,
        quantization_profile="bf16",
        target_environments=["staging", "production"],
        recipe=TrainingRecipe(
            seed=1234,
            dataset_ids=["tickets-2024q4", "summaries-gold-v3"],
            hyperparameters={"lora_r": "16", "lora_alpha": "32", "lr": "2e-4"},
            evaluation_summary={"rougeL": 0.431, "loss": 1.0875},
        ),
        data_scope=DataScope(
            corpora=["support-tickets"],
            time_window_start="2024-10-01",
            time_window_end="2024-12-31",
            filtering_rules=["pii-redacted", "lang=en"],
        ),
        artifact_uri="s3://adapters-incoming/support-summarizer/run-1234/",
        description="Summarises support tickets into three bullet points.",
    ),
    RevisionRegistered: lambda: RevisionRegistered(
        envelope=envelope("registered", environment=""),
        manifest_digest=MANIFEST_DIGEST,
        manifest_uri=f"file:///var/adapters/manifests/{MANIFEST_DIGEST}.json",
        base_model=BASE,
        tokenizer_revision="0e9e39f",
        tokenizer_hash="sha256:" + "11ab" * 16,
        chat_template_hash="sha256:" + "22cd" * 16,
        quantization_profile="bf16",
        target_environments=["staging", "production"],
        submitter="trainer-7@example.internal",
        file_count=2,
        total_bytes=167_772_160,
        trained_event_id=event_id(ADAPTER, "trained"),
    ),
    RevisionValidated: lambda: RevisionValidated(
        envelope=envelope("validated", environment=""),
        findings=FINDINGS,
        checked_environments=["staging", "production"],
    ),
    RevisionRejected: lambda: RevisionRejected(
        envelope=envelope("rejected", environment=""),
        findings=[Finding(code="base_mismatch", severity="error", message="base revision differs")],
    ),
    RevisionQuarantined: lambda: RevisionQuarantined(
        envelope=envelope("quarantined", environment=""),
        detected_by="scrubber",
        manifest_digest=MANIFEST_DIGEST,
        findings=[
            Finding(
                code="artifact_changed",
                severity="error",
                message="adapter_model.safetensors: the stored blob hashes to 1f2e, not 9a12",
                evidence={"path": "adapter_model.safetensors"},
            )
        ],
    ),
    RevisionEvaluated: lambda: RevisionEvaluated(
        envelope=envelope("evaluated"),
        report_digest=REPORT_DIGEST,
        report_uri=f"file:///var/adapters/reports/{REPORT_DIGEST}.json",
        suite_digest=SUITE_DIGEST,
        baseline_revision=PREVIOUS_REVISION,
        backend="vllm",
        metrics=METRICS,
    ),
    RevisionEvaluationFailed: lambda: RevisionEvaluationFailed(
        envelope=envelope("evaluation_failed"),
        cause="gate rougeL: 0.3712 < baseline 0.4031",
        report_digest=REPORT_DIGEST,
        report_uri=f"file:///var/adapters/reports/{REPORT_DIGEST}.json",
        suite_digest=SUITE_DIGEST,
        baseline_revision=PREVIOUS_REVISION,
        metrics=[dataclasses.replace(METRICS[0], value=0.3712, passed=False)],
        findings=FINDINGS[:1],
    ),
    RevisionApproved: lambda: RevisionApproved(
        envelope=envelope(
            "approved", actor=Actor(principal="bob@example.internal", role="approver")
        ),
        manifest_digest=MANIFEST_DIGEST,
        report_digest=REPORT_DIGEST,
        comment="Gates green; latency within budget.",
        approvers=["bob@example.internal"],
        signature="ed25519:" + "5a" * 64,
        key_id="approver-bob-2025",
        serving_contract="sha256:" + "7c" * 32,
    ),
    RevisionDenied: lambda: RevisionDenied(
        envelope=envelope("denied", actor=Actor(principal="bob@example.internal", role="approver")),
        manifest_digest=MANIFEST_DIGEST,
        report_digest=REPORT_DIGEST,
        comment="Tone regressions in the sampled outputs.",
        signature="ed25519:" + "6b" * 64,
        key_id="approver-bob-2025",
        serving_contract="sha256:" + "7c" * 32,
    ),
    CanaryStarted: lambda: CanaryStarted(
        envelope=envelope("canary_started"),
        traffic_percent=5,
        tenants=["tenant-acme"],
        stable_revision=PREVIOUS_REVISION,
    ),
    CanaryExpanded: lambda: CanaryExpanded(
        envelope=envelope("canary_expanded"),
        traffic_percent=25,
        tenants=["tenant-acme", "tenant-globex"],
        evidence=EVIDENCE,
    ),
    RevisionActivated: lambda: RevisionActivated(
        envelope=envelope("activated"),
        previous_revision=PREVIOUS_REVISION,
        reason="canary healthy for 30 minutes",
        evidence=EVIDENCE,
    ),
    RevisionSuperseded: lambda: RevisionSuperseded(
        envelope=envelope("superseded", revision=PREVIOUS_REVISION), superseded_by=REVISION
    ),
    RevisionRolledBack: lambda: RevisionRolledBack(
        envelope=envelope("rolled_back"),
        restored_revision=PREVIOUS_REVISION,
        reason="error rate above 1% during canary",
        evidence={"error_rate": "0.0134", "window": "PT5M"},
    ),
    RolloutFailed: lambda: RolloutFailed(
        envelope=envelope("rollout_failed"),
        action="approved",
        reason="replica http://127.0.0.1:8401 refused to load the revision: HTTP 500",
        evidence={"replica": "http://127.0.0.1:8401", "status": "500"},
        cause_id=event_id(ADAPTER, REVISION, "cause", "rollout_failed"),
    ),
    RolloutStalled: lambda: RolloutStalled(
        envelope=envelope("rollout_stalled"),
        action="promote",
        reason="replicas http://127.0.0.1:8402 unreachable: connection refused",
        unreachable=["http://127.0.0.1:8402"],
        stalled_since=MOMENT,
        waited_s=300,
        evidence={"error": "connection refused"},
        cause_id=event_id(ADAPTER, REVISION, "cause", "rollout_stalled"),
    ),
    RevisionExpired: lambda: RevisionExpired(
        envelope=envelope("expired", environment=""),
        reason="superseded for more than 30 days",
        policy={"keep_superseded_days": "30"},
    ),
    ManifestArchived: lambda: ManifestArchived(
        envelope=envelope("archived", environment=""),
        archive_uri=f"file:///var/adapters/archive/{MANIFEST_DIGEST}.tar",
        archive_digest="sha256:" + "e7e7" * 16,
    ),
    WeightsDeleted: lambda: WeightsDeleted(
        envelope=envelope("deleted", environment=""), file_count=2, bytes_freed=167_772_160
    ),
    PromoteRevision: lambda: PromoteRevision(
        header=header("promote"), revision=REVISION, canary_percent=5, tenants=["tenant-acme"]
    ),
    ExpandCanary: lambda: ExpandCanary(
        header=header("expand"), revision=REVISION, traffic_percent=25
    ),
    RollbackRevision: lambda: RollbackRevision(
        header=header("rollback", reason="error rate above 1%"), to_revision=PREVIOUS_REVISION
    ),
    AbortCanary: lambda: AbortCanary(header=header("abort"), revision=REVISION),
}


def sample(cls: type[T], **changes: Any) -> T:
    """A realistic instance of `cls`, the same every call; `changes` replace fields."""
    if cls not in _BUILDERS:
        raise LookupError(f"tests/samples.py has no builder for {cls.__name__}: add one")
    event: T = _BUILDERS[cls]()
    return dataclasses.replace(event, **changes) if changes else event  # type: ignore[type-var]
