"""Lifecycle facts on `adapters.lifecycle.v1`: one class per state transition, and the
rollout observations that record a fact without moving a track.

Only the registry's outbox relay publishes these; each carries an `Envelope`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from shared.events.common import BaseModelRef, Envelope, Finding, MetricResult

_NS = "adapters.lifecycle.v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionRegistered:
    """Ingest stored the artifact and wrote the manifest that binds it to its base."""

    SCHEMA: ClassVar[str] = f"{_NS}.RevisionRegistered"

    envelope: Envelope
    manifest_digest: str
    manifest_uri: str
    base_model: BaseModelRef
    tokenizer_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str
    target_environments: list[str] = field(default_factory=list)
    submitter: str
    file_count: int
    total_bytes: int
    trained_event_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionValidated:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionValidated"

    envelope: Envelope
    findings: list[Finding] = field(default_factory=list)
    checked_environments: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionRejected:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionRejected"

    envelope: Envelope
    findings: list[Finding]


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionEvaluated:
    """The gates passed; the full evidence is the report stored under `report_digest`."""

    SCHEMA: ClassVar[str] = f"{_NS}.RevisionEvaluated"

    envelope: Envelope
    report_digest: str
    report_uri: str
    suite_digest: str
    baseline_revision: str | None = None
    backend: str
    metrics: list[MetricResult] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionEvaluationFailed:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionEvaluationFailed"

    envelope: Envelope
    cause: str
    report_digest: str | None = None
    report_uri: str | None = None
    suite_digest: str | None = None
    baseline_revision: str | None = None
    metrics: list[MetricResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionApproved:
    """An approver's signed decision, bound to the exact manifest and report digests."""

    SCHEMA: ClassVar[str] = f"{_NS}.RevisionApproved"

    envelope: Envelope
    manifest_digest: str
    report_digest: str
    comment: str = ""
    approvers: list[str] = field(default_factory=list)
    signature: str
    key_id: str
    # The digest of the environment's serving contract the decision was made for (signed);
    # "" in decisions made before version 2 recorded it.
    serving_contract: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionDenied:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionDenied"

    envelope: Envelope
    manifest_digest: str
    report_digest: str
    comment: str = ""
    signature: str
    key_id: str
    serving_contract: str = ""  # as RevisionApproved's


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryStarted:
    SCHEMA: ClassVar[str] = f"{_NS}.CanaryStarted"

    envelope: Envelope
    traffic_percent: int
    tenants: list[str] = field(default_factory=list)
    stable_revision: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryExpanded:
    SCHEMA: ClassVar[str] = f"{_NS}.CanaryExpanded"

    envelope: Envelope
    traffic_percent: int
    tenants: list[str] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionActivated:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionActivated"

    envelope: Envelope
    previous_revision: str | None = None
    reason: str = ""
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionSuperseded:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionSuperseded"

    envelope: Envelope
    superseded_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionRolledBack:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionRolledBack"

    envelope: Envelope
    restored_revision: str | None = None
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionExpired:
    SCHEMA: ClassVar[str] = f"{_NS}.RevisionExpired"

    envelope: Envelope
    reason: str
    policy: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestArchived:
    SCHEMA: ClassVar[str] = f"{_NS}.ManifestArchived"

    envelope: Envelope
    archive_uri: str
    archive_digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightsDeleted:
    SCHEMA: ClassVar[str] = f"{_NS}.WeightsDeleted"

    envelope: Envelope
    file_count: int
    bytes_freed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionQuarantined:
    """The revision's stored bytes no longer hash to its manifest (caught at a use or a
    scrub): it is never loaded, approved or rolled back to again. One finding per file."""

    SCHEMA: ClassVar[str] = f"{_NS}.RevisionQuarantined"

    envelope: Envelope
    detected_by: str  # evaluator, activator, scrubber or archiver
    manifest_digest: str
    findings: list[Finding]


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutFailed:
    """A rollout that cannot complete: the replicas cannot serve the revision, no traffic
    moved. A fact on the log; the environment track stays where it was."""

    SCHEMA: ClassVar[str] = f"{_NS}.RolloutFailed"

    envelope: Envelope
    action: str
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)
    cause_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutStalled:
    """A rollout still waiting on replicas that give no answer, past the stall threshold;
    it is retried until they answer. A fact on the log; the track stays where it was."""

    SCHEMA: ClassVar[str] = f"{_NS}.RolloutStalled"

    envelope: Envelope
    action: str
    reason: str
    unreachable: list[str] = field(default_factory=list)
    stalled_since: datetime
    waited_s: int
    evidence: dict[str, str] = field(default_factory=dict)
    cause_id: str
