"""What a sweep reads from the registry: revisions, pointers, policies and holds, one snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.codec import Codec
from shared.events import RevisionSuperseded
from shared.pointers import EnvironmentPointer
from shared.registry.store import Registry, status_from_json
from shared.retention import RetentionPolicy, RevisionFacts


@dataclass(frozen=True, slots=True)
class Facts:
    revisions: list[RevisionFacts]
    pointers: dict[tuple[str, str], EnvironmentPointer]
    policies: list[RetentionPolicy]
    holds: set[tuple[str, str]]


async def read_facts(registry: Registry, adapter: str | None = None) -> Facts:
    """Every revision that may expire (of `adapter`, or all), and what decides it.

    One repeatable-read transaction, so versions and pointers agree with each other.
    """
    async with (
        registry.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        rows = await conn.fetch(
            "SELECT adapter, revision, version, tracks, created_at FROM revisions"
            " WHERE tracks->>'' IN ('validated', 'rejected')"
            " AND ($1::text IS NULL OR adapter = $1) ORDER BY adapter, created_at, revision",
            adapter,
        )
        pointer_rows = await conn.fetch(
            "SELECT * FROM pointers WHERE $1::text IS NULL OR adapter = $1", adapter
        )
        policies = await conn.fetch(
            "SELECT environment, adapter, keep_superseded, min_age_days FROM retention_policies"
        )
        holds = await conn.fetch(
            "SELECT adapter, revision FROM legal_holds WHERE released_at IS NULL"
            " AND ($1::text IS NULL OR adapter = $1)",
            adapter,
        )
        superseded = await _superseded_seqs(conn, registry.codec, adapter)
    return Facts(
        revisions=[
            RevisionFacts(
                adapter=r["adapter"],
                revision=r["revision"],
                version=r["version"],
                status=status_from_json(r["tracks"]),
                registered_at=r["created_at"],
                superseded_seq=superseded.get((r["adapter"], r["revision"]), {}),
            )
            for r in rows
        ],
        pointers={
            (p["adapter"], p["environment"]): EnvironmentPointer(
                active=p["active"],
                canary=p["canary"],
                canary_percent=p["canary_percent"],
                canary_tenants=tuple(p["canary_tenants"]),
                rollback_target=p["rollback_target"],
            )
            for p in pointer_rows
        },
        policies=[
            RetentionPolicy(
                environment=p["environment"],
                adapter=p["adapter"],
                keep_superseded=p["keep_superseded"],
                min_age_days=p["min_age_days"],
            )
            for p in policies
        ],
        holds={(h["adapter"], h["revision"]) for h in holds},
    )


async def _superseded_seqs(
    conn: Any, codec: Codec, adapter: str | None
) -> dict[tuple[str, str], dict[str, int]]:
    """(adapter, revision) -> {environment: seq of its last RevisionSuperseded there}."""
    rows = await conn.fetch(
        "SELECT seq, payload FROM outbox WHERE event_type = $1"
        " AND ($2::text IS NULL OR adapter = $2) ORDER BY seq",
        RevisionSuperseded.SCHEMA,
        adapter,
    )
    found: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        event: Any = codec.decode(bytes(row["payload"]))
        envelope = event.envelope
        found.setdefault((envelope.adapter, envelope.revision), {})[envelope.environment] = row[
            "seq"
        ]
    return found


async def pending(registry: Registry, adapter: str | None = None) -> list[tuple[str, str]]:
    """Revisions expired or archived whose weights are not yet deleted, oldest move first."""
    rows = await registry.pool.fetch(
        "SELECT adapter, revision FROM revisions WHERE tracks->>'' IN ('expired', 'archived')"
        " AND ($1::text IS NULL OR adapter = $1) ORDER BY updated_at, adapter, revision",
        adapter,
    )
    return [(r["adapter"], r["revision"]) for r in rows]


async def pointers_naming(registry: Registry, adapter: str, revision: str) -> list[str]:
    """The environments whose pointer still names the revision (must be none to delete it)."""
    rows = await registry.pool.fetch(
        "SELECT environment FROM pointers WHERE adapter = $1"
        " AND $2 IN (active, canary, rollback_target) ORDER BY environment",
        adapter,
        revision,
    )
    return [r["environment"] for r in rows]


async def hold_reason(registry: Registry, adapter: str, revision: str) -> str | None:
    """The reason of the legal hold in force on the revision, if any."""
    reason: str | None = await registry.pool.fetchval(
        "SELECT reason FROM legal_holds WHERE adapter = $1 AND revision = $2"
        " AND released_at IS NULL",
        adapter,
        revision,
    )
    return reason
