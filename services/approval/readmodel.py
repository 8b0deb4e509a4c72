"""The approval service's tables (migration 003): its projection of the lifecycle log,
the approvers' ballots and the decisions committed. SQL lives here and nowhere else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from services.approval.decisions import Choice
from services.approval.ports import (
    BallotRow,
    DecisionRow,
    Evaluation,
    Metric,
    Pending,
    Submission,
)
from services.approval.projection import project_decision
from shared.events import (
    Finding,
    RevisionApproved,
    RevisionDenied,
)
from shared.lifecycle import RevisionStatus, State
from shared.registry.port import Registry


def _evaluation(row: asyncpg.Record) -> Evaluation:
    return Evaluation(
        **{k: row[k] for k in ("adapter", "revision", "environment", "event_id", "backend")},
        correlation_id=row["correlation_id"],
        report_digest=row["report_digest"],
        report_uri=row["report_uri"],
        suite_digest=row["suite_digest"],
        baseline_revision=row["baseline_revision"],
        metrics=tuple(Metric(**m) for m in row["metrics"]),
        evaluated_at=row["evaluated_at"],
    )


async def pending(pool: asyncpg.Pool, registry: Registry, environment: str) -> list[Pending]:
    """Revisions evaluated in `environment` whose decision is not yet taken, oldest first.

    The read model holds the evaluations and ballots; whether each revision still waits
    (evaluated there, its revision track validated) is the registry's to say.
    """
    rows = await pool.fetch(
        "SELECT e.*, COALESCE(array_agg(b.principal ORDER BY b.cast_at)"
        "   FILTER (WHERE b.decision = $2), '{}') AS approvals"
        " FROM approval_evaluations e"
        " LEFT JOIN approval_ballots b ON b.adapter = e.adapter AND b.revision = e.revision"
        "   AND b.environment = e.environment"
        " WHERE e.environment = $1"
        " GROUP BY e.adapter, e.revision, e.environment"
        " ORDER BY e.evaluated_at, e.adapter, e.revision",
        environment,
        Choice.APPROVE,
    )
    found = []
    for r in rows:
        record = await registry.revision(r["adapter"], r["revision"])
        if record is None or not waits_for_decision(record.status, environment):
            continue
        found.append(
            Pending(
                evaluation=_evaluation(r),
                submitter=record.submitter,
                manifest_digest=record.manifest_digest,
                approvals=tuple(r["approvals"]),
            )
        )
    return found


def waits_for_decision(status: RevisionStatus, environment: str) -> bool:
    """Evaluated in `environment`, and neither rejected nor on its way out."""
    return status.track(environment) is State.EVALUATED and status.revision_track is State.VALIDATED


async def evaluation(
    conn: asyncpg.Connection | asyncpg.Pool,
    adapter: str,
    revision: str,
    environment: str,
    *,
    lock: bool = False,
) -> Evaluation | None:
    """The evaluation a decision is made on; `lock` serialises deciders on it (in a transaction)."""
    row = await conn.fetchrow(
        "SELECT * FROM approval_evaluations WHERE adapter = $1 AND revision = $2"
        " AND environment = $3" + (" FOR UPDATE" if lock else ""),
        adapter,
        revision,
        environment,
    )
    return _evaluation(row) if row else None


async def submission(pool: asyncpg.Pool, adapter: str, revision: str) -> Submission | None:
    row = await pool.fetchrow(
        "SELECT * FROM approval_submissions WHERE adapter = $1 AND revision = $2",
        adapter,
        revision,
    )
    if row is None:
        return None
    return Submission(
        manifest_digest=row["manifest_digest"],
        manifest_uri=row["manifest_uri"],
        submitter=row["submitter"],
        findings=tuple(Finding(**f) for f in row["findings"]),
    )


async def ballots(
    conn: asyncpg.Connection | asyncpg.Pool, adapter: str, revision: str, environment: str
) -> list[BallotRow]:
    rows = await conn.fetch(
        "SELECT principal, decision, comment, cast_at FROM approval_ballots"
        " WHERE adapter = $1 AND revision = $2 AND environment = $3 ORDER BY cast_at, principal",
        adapter,
        revision,
        environment,
    )
    return [
        BallotRow(
            principal=r["principal"],
            decision=Choice(r["decision"]),
            comment=r["comment"],
            cast_at=r["cast_at"],
        )
        for r in rows
    ]


async def cast_ballot(
    conn: asyncpg.Connection,
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
    await conn.execute(
        "INSERT INTO approval_ballots (adapter, revision, environment, principal, decision,"
        " comment, manifest_digest, report_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        adapter,
        revision,
        environment,
        principal,
        choice.value,
        comment,
        manifest_digest,
        report_digest,
    )


async def decision(
    pool: asyncpg.Pool, adapter: str, revision: str, environment: str
) -> DecisionRow | None:
    row = await pool.fetchrow(
        "SELECT * FROM approval_decisions WHERE adapter = $1 AND revision = $2"
        " AND environment = $3",
        adapter,
        revision,
        environment,
    )
    if row is None:
        return None
    return DecisionRow(
        decision=row["decision"],
        approvers=tuple(row["approvers"]),
        event_id=row["event_id"],
        key_id=row["key_id"],
        decided_at=row["decided_at"],
    )


class PostgresBallotBox:
    """Implements `ports.BallotBox` on one connection inside its transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def evaluation(self, adapter: str, revision: str, environment: str) -> Evaluation | None:
        return await evaluation(self._conn, adapter, revision, environment, lock=True)

    async def ballots(self, adapter: str, revision: str, environment: str) -> list[BallotRow]:
        return await ballots(self._conn, adapter, revision, environment)

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
        await cast_ballot(
            self._conn,
            adapter,
            revision,
            environment,
            principal=principal,
            choice=choice,
            comment=comment,
            manifest_digest=manifest_digest,
            report_digest=report_digest,
        )

    async def withdraw_ballot(
        self, adapter: str, revision: str, environment: str, *, principal: str
    ) -> bool:
        removed = await self._conn.fetchval(
            "DELETE FROM approval_ballots WHERE adapter = $1 AND revision = $2"
            " AND environment = $3 AND principal = $4 RETURNING 1",
            adapter,
            revision,
            environment,
            principal,
        )
        return removed is not None

    async def record_decision(self, event: RevisionApproved | RevisionDenied) -> None:
        await project_decision(self._conn, event)


class ReadModel:
    """Implements `ports.ApprovalReads`: the approval service's own tables, through one pool.

    `transaction()` gives the ballot box a ballot is decided in (row locks held until it
    ends); the module's functions take a connection, or this pool through the methods.
    """

    def __init__(self, pool: asyncpg.Pool, registry: Registry) -> None:
        self._pool = pool
        self._registry = registry

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresBallotBox]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresBallotBox(conn)

    async def pending(self, environment: str) -> list[Pending]:
        return await pending(self._pool, self._registry, environment)

    async def evaluation(self, adapter: str, revision: str, environment: str) -> Evaluation | None:
        return await evaluation(self._pool, adapter, revision, environment)

    async def submission(self, adapter: str, revision: str) -> Submission | None:
        return await submission(self._pool, adapter, revision)

    async def ballots(self, adapter: str, revision: str, environment: str) -> list[BallotRow]:
        return await ballots(self._pool, adapter, revision, environment)

    async def decision(self, adapter: str, revision: str, environment: str) -> DecisionRow | None:
        return await decision(self._pool, adapter, revision, environment)
