"""The archiver's own tables in PostgreSQL (`migrations/`): retention policies, legal holds,
and its answers to retention commands. Nothing outside the archiver reads or writes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from shared.retention import RetentionPolicy


class PostgresRetentionRules:
    """Implements `services.archiver.ports.RetentionRules`, and the rows its read API shows."""

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

    async def save_policy(self, policy: RetentionPolicy, set_by: str) -> None:
        await self._pool.execute(
            "INSERT INTO retention_policies (environment, adapter, keep_superseded, min_age_days,"
            " set_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (environment, adapter) DO UPDATE"
            " SET keep_superseded = $3, min_age_days = $4, set_by = $5, updated_at = now()",
            policy.environment,
            policy.adapter,
            policy.keep_superseded,
            policy.min_age_days,
            set_by,
        )

    async def place_hold(self, adapter: str, revision: str, reason: str, placed_by: str) -> bool:
        placed = await self._pool.fetchval(
            "INSERT INTO legal_holds (adapter, revision, reason, placed_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (adapter, revision) WHERE released_at IS NULL DO NOTHING RETURNING id",
            adapter,
            revision,
            reason,
            placed_by,
        )
        return placed is not None

    async def release_hold(
        self, adapter: str, revision: str, released_by: str, reason: str
    ) -> bool:
        released = await self._pool.fetchval(
            "UPDATE legal_holds SET released_at = now(), released_by = $3, release_reason = $4"
            " WHERE adapter = $1 AND revision = $2 AND released_at IS NULL RETURNING id",
            adapter,
            revision,
            released_by,
            reason,
        )
        return released is not None

    async def outcome(self, cause_id: str) -> Mapping[str, Any] | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM archiver_outcomes WHERE cause_id = $1", cause_id
        )
        return dict(row) if row else None

    async def record_outcome(self, answer: Mapping[str, Any]) -> None:
        """Record the answer to a command; the first answer under a command id stands."""
        await self._pool.execute(
            "INSERT INTO archiver_outcomes (cause_id, action, adapter, environment, revision,"
            " outcome, detail, principal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (cause_id) DO NOTHING",
            answer["cause_id"],
            answer["action"],
            answer["adapter"],
            answer["environment"],
            answer["revision"],
            answer["outcome"],
            answer["detail"],
            answer["principal"],
        )

    async def policy_rows(self, environment: str | None) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT * FROM retention_policies WHERE $1::text IS NULL OR environment = $1"
            " ORDER BY environment, adapter",
            environment,
        )
        return [dict(r) for r in rows]

    async def hold_rows(self, adapter: str | None) -> list[dict[str, Any]]:
        """The holds in force (of `adapter`, or every one)."""
        rows = await self._pool.fetch(
            "SELECT * FROM legal_holds WHERE released_at IS NULL"
            " AND ($1::text IS NULL OR adapter = $1) ORDER BY adapter, placed_at",
            adapter,
        )
        return [dict(r) for r in rows]
