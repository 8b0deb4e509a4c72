"""The activator's own tables (`migrations/`) and its reads of the registry's pointers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.activator.plans import Outcome, RequestAction
from services.activator.ports import CanaryStep
from shared.pointers import EnvironmentPointer


def _pointer(row: Any) -> EnvironmentPointer:
    return EnvironmentPointer(
        active=row["active"],
        canary=row["canary"],
        canary_percent=row["canary_percent"],
        canary_tenants=tuple(row["canary_tenants"]),
        rollback_target=row["rollback_target"],
    )


class PostgresActivatorStore:
    """Implements `ports.ActivatorStore` on migration 005's tables and the registry's pointers."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def replicas(self, environment: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT url FROM activator_replicas WHERE environment = $1 ORDER BY position",
            environment,
        )
        return [r["url"] for r in rows]

    async def served_environments(self) -> list[str]:
        rows = await self.pool.fetch("SELECT DISTINCT environment FROM activator_replicas")
        return sorted(r["environment"] for r in rows)

    async def set_replicas(self, environment: str, urls: Sequence[str]) -> list[str]:
        """Make `urls` the environment's replicas, in order (a URL serves one environment)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM activator_replicas WHERE environment = $1", environment)
            for position, url in enumerate(urls):
                await conn.execute(
                    "INSERT INTO activator_replicas (url, environment, position)"
                    " VALUES ($1, $2, $3) ON CONFLICT (url) DO UPDATE"
                    " SET environment = $2, position = $3, updated_at = now()",
                    url,
                    environment,
                    position,
                )
        return await self.replicas(environment)

    async def merge_analysis_settings(
        self, environment: str, settings: Mapping[str, object], set_by: str
    ) -> dict[str, Any]:
        """Set the given thresholds of the environment, keeping the others; all of them now."""
        found = await self.pool.fetchval(
            "INSERT INTO activator_analysis (environment, settings, set_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (environment) DO UPDATE SET settings ="
            " activator_analysis.settings || $2, set_by = $3, updated_at = now()"
            " RETURNING settings",
            environment,
            dict(settings),
            set_by,
        )
        return dict(found or {})

    async def canary_rows(
        self, adapter: str | None, environment: str | None
    ) -> list[dict[str, Any]]:
        """The canary steps being observed for `adapter` (or every adapter), in `environment`
        (or every one)."""
        rows = await self.pool.fetch(
            "SELECT * FROM activator_canaries WHERE ($1::text IS NULL OR adapter = $1)"
            " AND ($2::text IS NULL OR environment = $2) ORDER BY environment, adapter",
            adapter,
            environment,
        )
        return [dict(r) for r in rows]

    async def recent_outcomes(
        self, adapter: str, environment: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest answers about `adapter` (or, with an empty adapter, its environment's)."""
        rows = await self.pool.fetch(
            "SELECT * FROM activator_outcomes WHERE adapter = $1"
            " AND ($2::text IS NULL OR environment = $2) ORDER BY decided_at DESC LIMIT $3",
            adapter,
            environment,
            limit,
        )
        return [dict(r) for r in rows]

    async def analysis_settings(self, environment: str) -> dict[str, Any]:
        found = await self.pool.fetchval(
            "SELECT settings FROM activator_analysis WHERE environment = $1", environment
        )
        return dict(found or {})

    async def record_approvers(
        self,
        adapter: str,
        revision: str,
        environment: str,
        approvers: Sequence[str],
        event_id: str,
        approved_at: datetime,
    ) -> None:
        await self.pool.execute(
            "INSERT INTO activator_approvals (adapter, revision, environment, approvers, event_id,"
            " approved_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            adapter,
            revision,
            environment,
            list(approvers),
            event_id,
            approved_at,
        )

    async def approvers(self, adapter: str, revision: str, environment: str) -> list[str]:
        found = await self.pool.fetchval(
            "SELECT approvers FROM activator_approvals"
            " WHERE adapter = $1 AND revision = $2 AND environment = $3",
            adapter,
            revision,
            environment,
        )
        return list(found or [])

    async def pointers(self, environment: str) -> tuple[dict[str, EnvironmentPointer], int]:
        """Every adapter's pointer in `environment`, and a generation that rises with each move."""
        rows = await self.pool.fetch(
            "SELECT *, (extract(epoch FROM updated_at) * 1000000)::bigint AS micros"
            " FROM pointers WHERE environment = $1",
            environment,
        )
        generation = max((r["micros"] for r in rows), default=0)
        return {r["adapter"]: _pointer(r) for r in rows}, generation

    async def canaries(self) -> list[tuple[str, str, EnvironmentPointer]]:
        rows = await self.pool.fetch(
            "SELECT * FROM pointers WHERE canary IS NOT NULL ORDER BY environment, adapter"
        )
        return [(r["adapter"], r["environment"], _pointer(r)) for r in rows]

    async def canary_step(self, adapter: str, environment: str) -> CanaryStep | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM activator_canaries WHERE adapter = $1 AND environment = $2",
            adapter,
            environment,
        )
        if row is None:
            return None
        return CanaryStep(
            adapter=adapter,
            environment=environment,
            revision=row["revision"],
            traffic_percent=row["traffic_percent"],
            step_started_at=row["step_started_at"],
            baseline=row["baseline"],
        )

    async def start_canary_step(self, step: CanaryStep) -> None:
        await self.pool.execute(
            "INSERT INTO activator_canaries (adapter, environment, revision, traffic_percent,"
            " step_started_at, baseline) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (adapter, environment) DO UPDATE SET revision = $3,"
            " traffic_percent = $4, step_started_at = $5, baseline = $6, last_decision = NULL",
            step.adapter,
            step.environment,
            step.revision,
            step.traffic_percent,
            step.step_started_at,
            dict(step.baseline),
        )

    async def note_decision(
        self, adapter: str, environment: str, evidence: Mapping[str, str]
    ) -> None:
        await self.pool.execute(
            "UPDATE activator_canaries SET last_decision = $3"
            " WHERE adapter = $1 AND environment = $2",
            adapter,
            environment,
            dict(evidence),
        )

    async def end_canary(self, adapter: str, environment: str) -> None:
        await self.pool.execute(
            "DELETE FROM activator_canaries WHERE adapter = $1 AND environment = $2",
            adapter,
            environment,
        )

    async def outcome(self, cause_id: str) -> Mapping[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM activator_outcomes WHERE cause_id = $1", cause_id
        )
        return dict(row) if row else None

    async def record_outcome(
        self,
        *,
        cause_id: str,
        adapter: str,
        environment: str,
        action: RequestAction,
        revision: str | None,
        outcome: Outcome,
        detail: str,
        principal: str,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        await self.pool.execute(
            "INSERT INTO activator_outcomes (cause_id, adapter, environment, action, revision,"
            " outcome, detail, evidence, principal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (cause_id) DO NOTHING",
            cause_id,
            adapter,
            environment,
            action,
            revision,
            outcome,
            detail,
            dict(evidence or {}),
            principal,
        )
