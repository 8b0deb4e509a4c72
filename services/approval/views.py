"""What the API returns and accepts: the shapes its OpenAPI document publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.approval.verdicts import Verdict

DIGEST = r"^sha256:[0-9a-f]{64}$"
ADAPTER = r"^[a-z0-9][a-z0-9._-]{0,62}$"
ENVIRONMENT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
REPORT_DIGEST = r"^[A-Za-z0-9._:+/=-]{1,200}$"
NO_NUL = r"^[^\x00]*$"


class Problem(BaseModel):
    """RFC 9457 problem details: every error this service answers has this shape."""

    type: str = Field(examples=["urn:adapters:problem:stale-evidence"])
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="each invalid field: location, message, type (422 only)"
    )


class Me(BaseModel):
    name: str
    role: str


class SigningKey(BaseModel):
    key_id: str
    algorithm: Literal["ed25519"] = "ed25519"
    public_key_pem: str


class PendingRevision(BaseModel):
    adapter: str
    revision: str
    environment: str
    submitter: str | None
    manifest_digest: str | None
    report_digest: str
    baseline_revision: str | None
    evaluated_at: datetime
    gates_passed: bool
    approvals: list[str]
    required_approvals: int


class PendingList(BaseModel):
    environment: str
    revisions: list[PendingRevision]


class FileView(BaseModel):
    path: str
    sha256: str
    size: int


class ManifestView(BaseModel):
    base_model_id: str
    base_model_revision: str
    tokenizer_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str
    target_environments: list[str]
    source_uri: str
    files: list[FileView]


class FindingView(BaseModel):
    code: str
    severity: str
    message: str
    evidence: dict[str, str]


class MetricComparison(BaseModel):
    name: str
    candidate: float | None
    baseline: float | None
    delta: float | None = Field(description="candidate minus baseline, when both were measured")
    threshold: str = Field(description="the gate's bounds; empty for an ungated metric")
    passed: bool
    gated: bool = True
    greater_is_better: bool | None = Field(
        default=None, description="the metric's better direction; null where nothing states it"
    )
    verdict: Verdict = Field(
        default=Verdict.PASSED,
        description="passed, failed, n/a (every bound is on the change from a baseline there "
        "is none of) or not gated",
    )
    verdict_note: str = Field(default="", description="where the verdict holds only in part")


class OutputComparison(BaseModel):
    id: str
    prompt: str
    reference: Literal["baseline", "base"] = Field(
        description="what the candidate is compared with: the baseline revision's output, or "
        "the base model's where the environment has no baseline yet"
    )
    baseline: str | None = Field(description="the reference's output")
    candidate: str


class BallotView(BaseModel):
    principal: str
    decision: Literal["approve", "deny"]
    comment: str
    cast_at: datetime


class DecisionView(BaseModel):
    decision: Literal["approved", "denied"]
    approvers: list[str]
    event_id: str
    key_id: str
    decided_at: datetime


class FieldDiff(BaseModel):
    """One recipe or data-scope field of the candidate beside the serving revision's."""

    key: str = Field(examples=["recipe.hyperparameters.lr"])
    serving: list[str] | None = Field(description="the serving revision's items; null: absent")
    candidate: list[str] | None = Field(description="the candidate's items; null: absent")
    changed: bool


class ServingView(BaseModel):
    """The revision the candidate was evaluated against: what served the environment then."""

    revision: str
    known: bool = Field(description="false when the registry has no such revision")
    state: str | None = Field(description="its track in this environment now")
    submitter: str | None
    submitted_at: datetime | None
    approvers: list[str]
    approved_at: datetime | None
    activated_at: datetime | None
    manifest_digest: str | None
    serving_now: str | None = Field(
        description="the revision active in the environment now, when another one"
    )
    problems: list[str] = Field(description="what of it could not be read, said plainly")


class FigureView(BaseModel):
    """One performance figure, candidate beside baseline, and what produced it."""

    figure: str = Field(examples=["latency_p95_ms"])
    condition: str = Field(description="warm, under pressure, or a cold load, in words")
    candidate: float | None
    baseline: float | None
    backend: str | None = Field(description="the evaluator's backend: transformers or vllm")
    device: str | None = Field(examples=["cuda (NVIDIA H200)", "cpu"])
    dtype: str | None = Field(examples=["bfloat16"])


class PressureView(BaseModel):
    """Other tenants' adapters replayed beside the candidate's and the baseline's."""

    tenants: int = Field(description="other tenants' adapters (stand-ins of the candidate's shape)")
    slots: int = Field(description="adapters resident at most: the environment's max_loras")
    tenant_share: float = Field(description="share of the requests sent to other tenants")
    counted: bool = Field(description="whether the backend counted its adapter loads")
    adapter_loads: int
    swaps: int = Field(description="adapters evicted to make room during the replay")
    candidate_loads: int = Field(description="times the candidate itself was loaded again")


class MeasurementView(BaseModel):
    """How the evaluation's performance figures were taken (the report's `performance`)."""

    backend: str | None
    device: str | None
    dtype: str | None
    warmed_up: list[str] = Field(
        description="what answered before any latency was measured, in order"
    )
    warmup_calls: int | None
    figures: list[FigureView]
    pressure: PressureView | None = Field(description="null: no multi-tenant pressure")


class Evidence(BaseModel):
    adapter: str
    revision: str
    environment: str
    state: str | None = Field(description="the revision's track in this environment")
    outcome: Literal["evaluated", "evaluation_failed"] = Field(
        description="evaluation_failed: read-only evidence, no decision can be taken"
    )
    failure_cause: str | None = Field(description="why the evaluation failed, if it did")
    evaluation_findings: list[FindingView] = Field(
        description="what the evaluator found (each failed gate's finding)"
    )
    submitter: str | None
    submitted_at: datetime | None
    manifest_digest: str | None
    report_digest: str | None = Field(description="null: a failed evaluation wrote no report")
    report_uri: str | None
    suite_digest: str | None
    backend: str | None
    baseline_revision: str | None
    evaluated_at: datetime
    serving: ServingView | None = Field(
        description="the baseline revision beside the candidate; null: none served yet"
    )
    comparison: list[FieldDiff] = Field(
        description="recipe and data scope, field by field, beside the serving revision's"
    )
    manifest: ManifestView | None
    recipe: dict[str, Any]
    data_scope: dict[str, Any]
    findings: list[FindingView]
    metrics: list[MetricComparison]
    measurement: MeasurementView | None = Field(
        default=None,
        description="which backend, device and dtype produced each performance figure, the "
        "warm-up, and any multi-tenant pressure; null: the report does not say",
    )
    changed_outputs: list[OutputComparison]
    unchanged_outputs: int
    evidence_problems: list[str] = Field(
        description="evidence that could not be read (a missing manifest or report), said plainly"
    )
    required_approvals: int
    ballots: list[BallotView]
    decision: DecisionView | None


def _storable(value: str) -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates (the pattern covers NUL)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("not valid Unicode text") from exc
    return value


class DecisionRequest(BaseModel):
    """A ballot, bound to the evidence it was cast on."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "deny"]
    comment: str = Field(default="", max_length=2000, pattern=NO_NUL)
    manifest_digest: str = Field(pattern=DIGEST, description="the manifest the approver saw")
    report_digest: str = Field(
        pattern=REPORT_DIGEST, description="the evaluation report the approver saw"
    )

    @field_validator("comment")
    @classmethod
    def _text(cls, value: str) -> str:
        return _storable(value)


class DecisionOutcome(BaseModel):
    outcome: Literal["recorded", "approved", "denied"] = Field(
        description="recorded: a partial approval, more distinct approvers needed"
    )
    summary: str = Field(description="the outcome in words: `1 of 2 distinct approvals: ...`")
    adapter: str
    revision: str
    environment: str
    approvals: list[str]
    required_approvals: int
    event_id: str | None = Field(description="the lifecycle event committed, if any")
    key_id: str | None


class Withdrawn(BaseModel):
    """A ballot taken back before the decision was final."""

    withdrawn: Literal[True] = True
    adapter: str
    revision: str
    environment: str
