"""Versioned SQL migrations, applied at start under an advisory lock (one migrator at a time)."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x4D49_4752  # "MIGR": serialises concurrent starters


def migration_files(folder: Path = MIGRATIONS) -> list[tuple[int, str, Path]]:
    """`NNN_name.sql` files in version order; refuses gaps and duplicates."""
    found = []
    for path in folder.glob("*.sql"):
        m = re.fullmatch(r"(\d{3})_([a-z0-9_]+)\.sql", path.name)
        if not m:
            raise ValueError(f"migration file name {path.name!r} is not NNN_name.sql")
        found.append((int(m.group(1)), m.group(2), path))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1..n without gaps, got {versions}")
    return found


async def migrate(conn: asyncpg.Connection, folder: Path = MIGRATIONS) -> list[int]:
    """Apply every migration not yet applied, each in its own transaction."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, path in migration_files(folder):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            log.info("migration_applied", version=version, name=name)
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
