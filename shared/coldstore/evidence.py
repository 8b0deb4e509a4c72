"""A revision's lifecycle events as the registry committed them (its outbox), for archiving.

The outbox holds every sealed event in commit order with its `seq` and chain hash, the
same bytes the relay publishes to the lifecycle topic, so reading it here needs no Kafka.
"""

from __future__ import annotations

from typing import Any

from shared.codec import Codec
from shared.events import Event, ManifestArchived
from shared.lifecycle import LifecycleEvent


async def revision_events(
    conn: Any,
    codec: Codec,
    adapter: str,
    revision: str,
    *,
    types: tuple[type[Event], ...] = (),
) -> list[LifecycleEvent]:
    """Every event of `adapter@revision` (or only those of `types`), in seq order.

    `conn` is an asyncpg connection or pool. The revision is inside each payload, so the
    adapter's events are decoded and filtered here.
    """
    names = [t.SCHEMA for t in types]
    rows = await conn.fetch(
        "SELECT payload FROM outbox WHERE adapter = $1"
        " AND (cardinality($2::text[]) = 0 OR event_type = ANY($2::text[])) ORDER BY seq",
        adapter,
        names,
    )
    events: list[LifecycleEvent] = []
    for row in rows:
        event: Any = codec.decode(bytes(row["payload"]))
        if event.envelope.revision == revision:
            events.append(event)
    return events


async def manifest_archived(
    conn: Any, codec: Codec, adapter: str, revision: str
) -> ManifestArchived | None:
    """Where the revision's archive record lives and its digest, once that was committed."""
    found = await revision_events(conn, codec, adapter, revision, types=(ManifestArchived,))
    last = found[-1] if found else None
    return last if isinstance(last, ManifestArchived) else None
