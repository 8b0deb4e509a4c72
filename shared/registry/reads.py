"""The registry's reads in PostgreSQL: rows to values, one query each (used inside and
outside a transaction), and the JSON form of a revision's tracks."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg

from shared.codec import Codec
from shared.events import Event
from shared.lifecycle import REVISION_TRACK_KEY, LifecycleEvent, RevisionStatus, State
from shared.pointers import EnvironmentPointer
from shared.registry.port import PointerKey, RevisionRecord


def status_to_json(status: RevisionStatus) -> dict[str, str | None]:
    tracks: dict[str, str | None] = {REVISION_TRACK_KEY: status.revision_track}
    tracks.update(status.environment_tracks)
    return tracks


def status_from_json(tracks: dict[str, str | None]) -> RevisionStatus:
    revision_track = tracks.get(REVISION_TRACK_KEY)
    return RevisionStatus(
        revision_track=State(revision_track) if revision_track else None,
        environment_tracks={e: State(s) for e, s in tracks.items() if e and s},
    )


def record_from(row: Any) -> RevisionRecord:
    return RevisionRecord(
        adapter=row["adapter"],
        revision=row["revision"],
        version=row["version"],
        status=status_from_json(row["tracks"]),
        manifest_digest=row["manifest_digest"],
        submitter=row["submitter"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def revisions(
    conn: asyncpg.Connection, tracks: Collection[State], adapter: str | None
) -> list[RevisionRecord]:
    rows = await conn.fetch(
        "SELECT * FROM revisions WHERE (cardinality($1::text[]) = 0 OR tracks->>$3 = ANY($1))"
        " AND ($2::text IS NULL OR adapter = $2) ORDER BY updated_at, adapter, revision",
        [State(t).value for t in tracks],
        adapter,
        REVISION_TRACK_KEY,
    )
    return [record_from(r) for r in rows]


async def pointers(
    conn: asyncpg.Connection, adapter: str | None
) -> dict[PointerKey, EnvironmentPointer]:
    rows = await conn.fetch(
        "SELECT * FROM pointers WHERE $1::text IS NULL OR adapter = $1 ORDER BY adapter,"
        " environment",
        adapter,
    )
    return {(r["adapter"], r["environment"]): pointer_from(r) for r in rows}


async def events(
    conn: asyncpg.Connection,
    codec: Codec,
    adapter: str | None,
    revision: str | None,
    types: Collection[type[Event]],
) -> list[LifecycleEvent]:
    """Sealed events from the outbox (the bytes the relay publishes), in seq order."""
    rows = await conn.fetch(
        "SELECT payload FROM outbox WHERE ($1::text IS NULL OR adapter = $1)"
        " AND (cardinality($2::text[]) = 0 OR event_type = ANY($2::text[]))"
        " ORDER BY adapter, seq",
        adapter,
        [t.SCHEMA for t in types],
    )
    events: list[LifecycleEvent] = []
    for row in rows:
        event: Any = codec.decode(bytes(row["payload"]))
        if revision is None or event.envelope.revision == revision:
            events.append(event)
    return events


async def event(conn: asyncpg.Connection, codec: Codec, event_id: str) -> Event | None:
    """The committed event with `event_id`, whichever adapter it is of (the id is unique)."""
    row = await conn.fetchrow("SELECT payload FROM outbox WHERE event_id = $1", event_id)
    if row is None:
        return None
    decoded: Any = codec.decode(bytes(row["payload"]))
    return decoded  # type: ignore[no-any-return]


async def pointer(
    conn: asyncpg.Connection, adapter: str, environment: str, *, lock: bool
) -> EnvironmentPointer:
    row = await conn.fetchrow(
        "SELECT * FROM pointers WHERE adapter = $1 AND environment = $2"
        + (" FOR UPDATE" if lock else ""),
        adapter,
        environment,
    )
    return EnvironmentPointer() if row is None else pointer_from(row)


def pointer_from(row: Any) -> EnvironmentPointer:
    return EnvironmentPointer(
        active=row["active"],
        canary=row["canary"],
        canary_percent=row["canary_percent"],
        canary_tenants=tuple(row["canary_tenants"]),
        rollback_target=row["rollback_target"],
    )


async def chain_heads(conn: asyncpg.Connection) -> dict[str, tuple[int, str, int]]:
    """adapter -> (committed head seq, its hash, the highest seq the relay has published)."""
    rows = await conn.fetch(
        "SELECT a.name, a.last_seq, a.last_hash,"
        " (SELECT coalesce(max(o.seq), 0) FROM outbox o"
        "   WHERE o.adapter = a.name AND o.published_at IS NOT NULL) AS published"
        " FROM adapters a ORDER BY a.name"
    )
    return {r["name"]: (r["last_seq"], r["last_hash"], r["published"]) for r in rows}
