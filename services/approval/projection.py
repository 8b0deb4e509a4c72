"""The approval service's consumer: it projects the lifecycle events it needs into its
read model (migration 003), each in one transaction with its inbox entry, so a
redelivered event changes nothing. The handlers write through `ports.ProjectionStore`;
`PostgresProjection` is the PostgreSQL one.

A decision (RevisionApproved, RevisionDenied) is projected only once it is believed
(`shared.decisions.believed`: signed by a trusted key, committed by the registry) and as
the registry's copy; a second, different decision for one (adapter, revision,
environment) is refused as `ConflictingDecision`. Either refusal is a log line, the
failures metric and the dead-letter topic, never a silent first-writer-wins."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from services.approval.ports import Evaluation, Metric, Projected, ProjectionStore
from shared.decisions import (
    ConflictingDecision,
    Decision,
    Keys,
    UntrustedDecision,
    believed,
)
from shared.events import (
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.kafka.dispatch import Handler
from shared.registry.port import Registry
from shared.signing import APPROVED, DENIED

log = structlog.get_logger(__name__)


async def project_registered(conn: asyncpg.Connection, event: RevisionRegistered) -> None:
    env = event.envelope
    await conn.execute(
        "INSERT INTO approval_submissions (adapter, revision, manifest_digest, manifest_uri,"
        " submitter, registered_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        env.adapter,
        env.revision,
        event.manifest_digest,
        event.manifest_uri,
        event.submitter,
        env.occurred_at,
    )


async def project_validated(conn: asyncpg.Connection, event: RevisionValidated) -> None:
    env = event.envelope
    await conn.execute(
        "UPDATE approval_submissions SET findings = $3, validated_at = $4"
        " WHERE adapter = $1 AND revision = $2",
        env.adapter,
        env.revision,
        [dataclasses.asdict(f) for f in event.findings],
        env.occurred_at,
    )


def evaluation_of(event: RevisionEvaluated) -> Evaluation:
    """The read model's row for `event`; JSON (and so jsonb) has no NaN: a metric not
    measured is kept as None."""
    env = event.envelope
    return Evaluation(
        adapter=env.adapter,
        revision=env.revision,
        environment=env.environment,
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        report_digest=event.report_digest,
        report_uri=event.report_uri,
        suite_digest=event.suite_digest,
        baseline_revision=event.baseline_revision,
        backend=event.backend,
        metrics=tuple(
            Metric(
                name=m.name,
                value=_finite(m.value),
                baseline=_finite(m.baseline),
                threshold=m.threshold,
                passed=m.passed,
            )
            for m in event.metrics
        ),
        evaluated_at=env.occurred_at,
    )


async def project_evaluated(conn: asyncpg.Connection, event: RevisionEvaluated) -> None:
    row = evaluation_of(event)
    await conn.execute(
        "INSERT INTO approval_evaluations (adapter, revision, environment, event_id,"
        " correlation_id, report_digest, report_uri, suite_digest, baseline_revision, backend,"
        " metrics, evaluated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT DO NOTHING",
        row.adapter,
        row.revision,
        row.environment,
        row.event_id,
        row.correlation_id,
        row.report_digest,
        row.report_uri,
        row.suite_digest,
        row.baseline_revision,
        row.backend,
        [dataclasses.asdict(m) for m in row.metrics],
        row.evaluated_at,
    )


async def project_decision(
    conn: asyncpg.Connection, event: RevisionApproved | RevisionDenied
) -> None:
    """Who decided, as the registry says; a no-op when the service already wrote it at
    commit; ConflictingDecision when another decision stands for the same revision there."""
    env = event.envelope
    kept = await conn.fetchval(
        "SELECT event_id FROM approval_decisions"
        " WHERE adapter = $1 AND revision = $2 AND environment = $3",
        env.adapter,
        env.revision,
        env.environment,
    )
    if kept is not None and kept != env.event_id:
        raise ConflictingDecision(
            f"conflicting_decision: {env.event_id} decides {env.adapter}@{env.revision} in "
            f"{env.environment}, where decision {kept} already stands"
        )
    approved = isinstance(event, RevisionApproved)
    approvers = (
        list(event.approvers) if isinstance(event, RevisionApproved) else [env.actor.principal]
    )
    await conn.execute(
        "INSERT INTO approval_decisions (adapter, revision, environment, decision, approvers,"
        " event_id, manifest_digest, report_digest, key_id, decided_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        env.adapter,
        env.revision,
        env.environment,
        APPROVED if approved else DENIED,
        approvers,
        env.event_id,
        event.manifest_digest,
        event.report_digest,
        event.key_id,
        env.occurred_at,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


WRITERS: dict[type, Callable[[asyncpg.Connection, Any], Awaitable[None]]] = {
    RevisionRegistered: project_registered,
    RevisionValidated: project_validated,
    RevisionEvaluated: project_evaluated,
    RevisionApproved: project_decision,
    RevisionDenied: project_decision,
}


class PostgresProjection:
    """Implements `ports.ProjectionStore` on the approval tables and their own inbox."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def project(self, event: Projected) -> bool:
        write = WRITERS[type(event)]
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO approval_inbox (event_id) VALUES ($1)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                event.envelope.event_id,
            )
            if fresh:
                await write(conn, event)
        return bool(fresh)


async def on_projected(event: Projected, store: ProjectionStore) -> None:
    """Any projected lifecycle event: into the read model, once."""
    await store.project(event)


Believe = Callable[[Decision], Awaitable[Decision]]


def believer(registry: Registry, keys: Callable[[], Keys]) -> Believe:
    """`shared.decisions.believed` against `registry`, with the keys trusted now."""

    async def believe(event: Decision) -> Decision:
        return await believed(event, registry, keys())

    return believe


async def on_decision(event: Decision, store: ProjectionStore, believe: Believe) -> None:
    """A decision off the log: into the read model as the registry's copy, once believed."""
    env = event.envelope
    bound = log.bind(adapter=env.adapter, environment=env.environment, event_id=env.event_id)
    try:
        await store.project(await believe(event))
    except (UntrustedDecision, ConflictingDecision) as exc:
        bound.error("decision_refused", revision=env.revision, reason=str(exc))
        raise


def handlers(store: ProjectionStore, believe: Believe) -> dict[type, Handler]:
    async def handle(event: Any) -> None:
        await on_projected(event, store)

    async def decision(event: Any) -> None:
        await on_decision(event, store, believe)

    routes: dict[type, Handler] = dict.fromkeys(WRITERS, handle)
    return routes | dict.fromkeys((RevisionApproved, RevisionDenied), decision)
