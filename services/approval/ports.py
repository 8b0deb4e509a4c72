"""What the approval service keeps in its own tables, as ports and the values they answer.

Two implementations keep one contract: PostgreSQL (`readmodel.ReadModel` for reads and
ballots, `projection.PostgresProjection` for the lifecycle projection) and memory
(`tests.fakes.approval.InMemoryApprovalStore`), so the handlers and `deciding.cast` run
against either. Nothing here imports a database driver.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.approval.decisions import Choice
from shared.events import (
    Finding,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)

# The lifecycle events the approval service projects into its read model.
Projected = (
    RevisionRegistered | RevisionValidated | RevisionEvaluated | RevisionApproved | RevisionDenied
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """A gated metric as the event carried it; a NaN (not measured) reads as None."""

    name: str
    value: float | None
    baseline: float | None
    threshold: str
    passed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    adapter: str
    revision: str
    environment: str
    event_id: str
    correlation_id: str
    report_digest: str
    report_uri: str
    suite_digest: str
    baseline_revision: str | None
    backend: str
    metrics: tuple[Metric, ...]
    evaluated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    manifest_digest: str
    manifest_uri: str
    submitter: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BallotRow:
    principal: str
    decision: Choice
    comment: str
    cast_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRow:
    decision: str
    approvers: tuple[str, ...]
    event_id: str
    key_id: str
    decided_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    evaluation: Evaluation
    submitter: str | None
    manifest_digest: str | None
    approvals: tuple[str, ...]


class BallotBox(Protocol):
    """One ballot's transaction: the evaluation it is decided on stays locked until it ends,
    and everything written in it is kept only if it ends without an exception."""

    async def evaluation(self, adapter: str, revision: str, environment: str) -> Evaluation | None:
        """The evaluation, locked against other deciders for the rest of the transaction."""
        ...

    async def ballots(self, adapter: str, revision: str, environment: str) -> list[BallotRow]:
        """Every ballot cast so far, in the order they were cast."""
        ...

    async def cast_ballot(
        self,
        adapter: str,
        revision: str,
        environment: str,
        *,
        principal: str,
        choice: Choice,
        comment: str,
        manifest_digest: str,
        report_digest: str,
    ) -> None:
        """Record one ballot; one principal casts one ballot per revision and environment."""
        ...

    async def withdraw_ballot(
        self, adapter: str, revision: str, environment: str, *, principal: str
    ) -> bool:
        """Remove `principal`'s ballot; False when they cast none."""
        ...

    async def record_decision(self, event: RevisionApproved | RevisionDenied) -> None:
        """Record the decision committed to the log; a no-op when it is recorded already."""
        ...


class ApprovalReads(Protocol):
    """The read model the HTTP layer and `deciding.cast` read, and the ballots' transaction."""

    def transaction(self) -> AbstractAsyncContextManager[BallotBox]: ...

    async def pending(self, environment: str) -> list[Pending]:
        """Revisions evaluated in `environment` whose decision is not yet taken, oldest first."""
        ...

    async def evaluation(
        self, adapter: str, revision: str, environment: str
    ) -> Evaluation | None: ...

    async def submission(self, adapter: str, revision: str) -> Submission | None: ...

    async def ballots(self, adapter: str, revision: str, environment: str) -> list[BallotRow]: ...

    async def decision(
        self, adapter: str, revision: str, environment: str
    ) -> DecisionRow | None: ...


class ProjectionStore(Protocol):
    """Where the lifecycle handlers write the read model."""

    async def project(self, event: Projected) -> bool:
        """Write `event` with its inbox entry in one transaction; False (and no change)
        when it was projected already."""
        ...
