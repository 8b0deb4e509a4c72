"""The registry: every transition decided by the lifecycle and committed atomically.

One PostgreSQL transaction per commit: compare-and-set on each revision's version,
the lifecycle's verdict, the environment pointer's move, the next per-adapter `seq` and
chain hash, and the sealed event appended to the outbox (which the relay publishes).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared import chain
from shared.codec import Codec
from shared.events import Event, RevisionRegistered, RevisionRolledBack
from shared.lifecycle import (
    InvalidTransition,
    LifecycleEvent,
    RevisionStatus,
    State,
    apply,
)
from shared.pointers import EnvironmentPointer, move_pointer
from shared.registry import reads
from shared.registry.migrate import migrate
from shared.registry.port import (
    Committed,
    ConcurrentTransition,
    PointerKey,
    RevisionRecord,
    Snapshot,
    Step,
)
from shared.registry.reads import status_from_json, status_to_json

__all__ = ["UNAVAILABLE", "ConcurrentTransition", "PostgresRegistry", "Step"]

NOTIFY_CHANNEL = "adapters_outbox"

# What asyncpg raises while PostgreSQL is away (restarting, failing over, unreachable):
# worth waiting for, unlike an error in what was asked of it.
UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused or reset on the wire
    asyncpg.PostgresConnectionError,  # the connection was lost or could not be made
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,  # a session ended by the shutdown
    asyncpg.CrashShutdownError,
)


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PostgresRegistry:
    """The registry in PostgreSQL (implements `shared.registry.port.Registry`).

    `pool` is for the composition root that shares it with a service's own storage
    adapter; handlers see only the port.
    """

    def __init__(self, pool: asyncpg.Pool, codec: Codec) -> None:
        self.pool = pool
        self.codec = codec

    @classmethod
    async def connect(
        cls, dsn: str, codec: Codec, *, min_size: int = 1, max_size: int = 5
    ) -> PostgresRegistry:
        """Connect, apply pending migrations, and return a ready registry."""
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=init_connection
        )
        return cls(pool, codec)

    async def close(self) -> None:
        await self.pool.close()

    async def transition(
        self, event: LifecycleEvent, expected_version: int | None = None
    ) -> Committed:
        return await self.commit([Step(event, expected_version)])

    async def commit(
        self, steps: Sequence[Step], *, inbox: tuple[str, str] | None = None
    ) -> Committed:
        """Commit `steps` in order, all or nothing.

        `inbox=(consumer, event_id)` records that the consumer handled that event in the
        same transaction, so a redelivered event changes nothing.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            if inbox is not None and not await _record_handled(conn, *inbox):
                return Committed(duplicate=True)
            ids = [s.event.envelope.event_id for s in steps]
            if ids and await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE event_id = ANY($1::text[])", ids
            ) == len(ids):
                return Committed(duplicate=True)
            sealed: list[LifecycleEvent] = []
            versions: dict[tuple[str, str], int] = {}
            heads: dict[str, tuple[int, str]] = {}
            for step in steps:
                event, version = await self._commit_one(conn, step, heads)
                sealed.append(event)
                versions[(event.envelope.adapter, event.envelope.revision)] = version
            await _check_restored(conn, sealed)
            for adapter, (seq, head) in heads.items():
                await conn.execute(
                    "UPDATE adapters SET last_seq = $2, last_hash = $3 WHERE name = $1",
                    adapter,
                    seq,
                    head,
                )
            await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        return Committed(events=tuple(sealed), versions=versions)

    async def _commit_one(
        self, conn: asyncpg.Connection, step: Step, heads: dict[str, tuple[int, str]]
    ) -> tuple[LifecycleEvent, int]:
        envelope = step.event.envelope
        adapter, revision = envelope.adapter, envelope.revision
        if adapter not in heads:
            await conn.execute(
                "INSERT INTO adapters (name) VALUES ($1) ON CONFLICT DO NOTHING", adapter
            )
            # The adapter row lock serialises seq assignment: one chain per adapter.
            row = await conn.fetchrow(
                "SELECT last_seq, last_hash FROM adapters WHERE name = $1 FOR UPDATE", adapter
            )
            heads[adapter] = (row["last_seq"], row["last_hash"])
        current = await conn.fetchrow(
            "SELECT version, tracks FROM revisions WHERE adapter = $1 AND revision = $2 FOR UPDATE",
            adapter,
            revision,
        )
        version = current["version"] if current else 0
        if step.expected_version is not None and step.expected_version != version:
            raise ConcurrentTransition(
                f"{adapter}@{revision}: expected version {step.expected_version}, "
                f"found {version} ({type(step.event).__name__} not committed)"
            )
        status = status_from_json(current["tracks"]) if current else RevisionStatus()
        new_status = apply(status, step.event)  # raises InvalidTransition

        seq, prev_hash = heads[adapter]
        stamped = dataclasses.replace(
            step.event, envelope=dataclasses.replace(envelope, occurred_at=datetime.now(UTC))
        )
        event = chain.seal(stamped, seq=seq + 1, prev_hash=prev_hash)
        heads[adapter] = (seq + 1, event.envelope.hash)
        await conn.execute(
            "INSERT INTO outbox (adapter, seq, event_id, event_type, payload)"
            " VALUES ($1, $2, $3, $4, $5)",
            adapter,
            seq + 1,
            envelope.event_id,
            type(event).SCHEMA,
            self.codec.encode(event),
        )
        if current is None:
            registered: Any = event if isinstance(event, RevisionRegistered) else None
            await conn.execute(
                "INSERT INTO revisions (adapter, revision, version, tracks, manifest_digest,"
                " submitter) VALUES ($1, $2, 1, $3, $4, $5)",
                adapter,
                revision,
                status_to_json(new_status),
                registered.manifest_digest if registered else None,
                registered.submitter if registered else None,
            )
        else:
            await conn.execute(
                "UPDATE revisions SET version = version + 1, tracks = $3, updated_at = now()"
                " WHERE adapter = $1 AND revision = $2",
                adapter,
                revision,
                status_to_json(new_status),
            )
        await self._move_pointers(conn, event)
        return event, version + 1

    async def _move_pointers(self, conn: asyncpg.Connection, event: LifecycleEvent) -> None:
        envelope = event.envelope
        if envelope.environment:
            environments = [envelope.environment]
        else:  # a revision-wide fact (expiry) may clear pointers in every environment
            environments = [
                r["environment"]
                for r in await conn.fetch(
                    "SELECT environment FROM pointers WHERE adapter = $1", envelope.adapter
                )
            ]
        for environment in environments:
            before = await reads.pointer(conn, envelope.adapter, environment, lock=True)
            after = move_pointer(before, event)
            if after != before:
                await conn.execute(
                    "INSERT INTO pointers (adapter, environment, active, canary, canary_percent,"
                    " canary_tenants, rollback_target) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    " ON CONFLICT (adapter, environment) DO UPDATE SET active = $3, canary = $4,"
                    " canary_percent = $5, canary_tenants = $6, rollback_target = $7,"
                    " updated_at = now()",
                    envelope.adapter,
                    environment,
                    after.active,
                    after.canary,
                    after.canary_percent,
                    list(after.canary_tenants),
                    after.rollback_target,
                )

    async def revision(self, adapter: str, revision: str) -> RevisionRecord | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM revisions WHERE adapter = $1 AND revision = $2", adapter, revision
        )
        return None if row is None else reads.record_from(row)

    async def revisions(
        self, *, tracks: Collection[State] = (), adapter: str | None = None
    ) -> list[RevisionRecord]:
        async with self.pool.acquire() as conn:
            return await reads.revisions(conn, tracks, adapter)

    async def pointers(self, adapter: str | None = None) -> dict[PointerKey, EnvironmentPointer]:
        async with self.pool.acquire() as conn:
            return await reads.pointers(conn, adapter)

    async def events(
        self, adapter: str, revision: str | None = None, *, types: Collection[type[Event]] = ()
    ) -> list[LifecycleEvent]:
        async with self.pool.acquire() as conn:
            return await reads.events(conn, self.codec, adapter, revision, types)

    async def snapshot(
        self,
        *,
        tracks: Collection[State] = (),
        adapter: str | None = None,
        event_types: Collection[type[Event]] = (),
    ) -> Snapshot:
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return Snapshot(
                revisions=await reads.revisions(conn, tracks, adapter),
                pointers=await reads.pointers(conn, adapter),
                events=(
                    await reads.events(conn, self.codec, adapter, None, event_types)
                    if event_types
                    else []
                ),
            )

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def pointer(self, adapter: str, environment: str) -> EnvironmentPointer:
        async with self.pool.acquire() as conn:
            return await reads.pointer(conn, adapter, environment, lock=False)

    async def handled(self, consumer: str, event_id: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2", consumer, event_id
            )
        )

    async def record_handled(self, consumer: str, event_id: str) -> bool:
        """Mark an event handled when the handler changed nothing else; False if it was."""
        async with self.pool.acquire() as conn:
            return await _record_handled(conn, consumer, event_id)


async def _check_restored(conn: asyncpg.Connection, events: Sequence[LifecycleEvent]) -> None:
    """A rollback that names the revision it restores must leave that revision active: the
    audit log may never claim a restore the pointer does not show."""
    for event in events:
        if not isinstance(event, RevisionRolledBack) or not event.restored_revision:
            continue
        envelope = event.envelope
        pointer = await reads.pointer(conn, envelope.adapter, envelope.environment, lock=False)
        if pointer.active != event.restored_revision:
            raise InvalidTransition(
                event,
                None,
                f"it claims to restore {event.restored_revision}, but the commit leaves "
                f"{pointer.active or 'nothing'} active in {envelope.environment}",
            )


async def _record_handled(conn: asyncpg.Connection, consumer: str, event_id: str) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        consumer,
        event_id,
    )
    return inserted is not None
