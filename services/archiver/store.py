"""The archiver's own tables in PostgreSQL: retention policies and legal holds."""

from __future__ import annotations

import asyncpg

from shared.retention import RetentionPolicy


class PostgresRetentionRules:
    """Implements `services.archiver.ports.RetentionRules`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def policies(self) -> list[RetentionPolicy]:
        rows = await self._pool.fetch(
            "SELECT environment, adapter, keep_superseded, min_age_days FROM retention_policies"
        )
        return [
            RetentionPolicy(
                environment=p["environment"],
                adapter=p["adapter"],
                keep_superseded=p["keep_superseded"],
                min_age_days=p["min_age_days"],
            )
            for p in rows
        ]

    async def holds(self, adapter: str | None = None) -> set[tuple[str, str]]:
        rows = await self._pool.fetch(
            "SELECT adapter, revision FROM legal_holds WHERE released_at IS NULL"
            " AND ($1::text IS NULL OR adapter = $1)",
            adapter,
        )
        return {(h["adapter"], h["revision"]) for h in rows}

    async def hold_reason(self, adapter: str, revision: str) -> str | None:
        reason: str | None = await self._pool.fetchval(
            "SELECT reason FROM legal_holds WHERE adapter = $1 AND revision = $2"
            " AND released_at IS NULL",
            adapter,
            revision,
        )
        return reason
