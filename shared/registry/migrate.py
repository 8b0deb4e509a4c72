"""Versioned SQL migrations, one folder per owner, applied at start under one advisory lock.

The kernel applies its own folder (registry, outbox, inbox, catalogue, principals) when the
registry connects; each service applies its own (`services/<name>/migrations/`) from its
composition root. `schema_migrations` records each owner's versions under its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_LOCK_KEY = 0x4D49_4752  # "MIGR": serialises concurrent starters, whichever owner they apply


@dataclass(frozen=True, slots=True)
class Migrations:
    """An owner's migrations: `NNN_name.sql` files in `folder`, recorded under `component`."""

    component: str
    folder: Path


KERNEL = Migrations("registry", Path(__file__).parent / "migrations")

# Before each owner had its folder, one global sequence held everything: a database
# migrated then records (version, name) rows such as (3, "approval"). What each became,
# by its name (the name says what the file held; 003_approval also created principals).
_LEGACY: dict[str, tuple[tuple[str, int, str], ...]] = {
    "registry": (("registry", 1, "registry"),),
    "catalogue": (("registry", 2, "catalogue"),),
    "approval": (("registry", 3, "principals"), ("approval", 1, "approval")),
    "principals": (("registry", 3, "principals"),),
    "retention": (("archiver", 1, "retention"),),
    "activator": (("activator", 1, "activator"),),
}


_LEDGER = (
    "CREATE TABLE {if_new}schema_migrations (component text NOT NULL, version integer NOT NULL,"
    " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (component, version))"
)


def migration_files(folder: Path) -> list[tuple[int, str, Path]]:
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


async def _ensure_ledger(conn: asyncpg.Connection) -> None:
    """Create `schema_migrations`, or convert the single-sequence one of older databases."""
    await conn.execute(_LEDGER.format(if_new="IF NOT EXISTS "))
    has_component = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = 'schema_migrations' AND column_name = 'component')"
    )
    if has_component:
        return
    async with conn.transaction():
        old = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        await conn.execute("DROP TABLE schema_migrations")
        await conn.execute(_LEDGER.format(if_new=""))
        for old_name in old:
            for component, new_version, name in _LEGACY.get(old_name, ()):
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)",
                    component,
                    new_version,
                    name,
                )
    log.info("migrations_ledger_converted", names=sorted(old))


async def migrate(conn: asyncpg.Connection, migrations: Migrations = KERNEL) -> list[int]:
    """Apply every one of `migrations` not yet applied, each in its own transaction."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await _ensure_ledger(conn)
        done = {
            r["version"]
            for r in await conn.fetch(
                "SELECT version FROM schema_migrations WHERE component = $1", migrations.component
            )
        }
        for version, name, path in migration_files(migrations.folder):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)",
                    migrations.component,
                    version,
                    name,
                )
            log.info(
                "migration_applied", component=migrations.component, version=version, name=name
            )
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


async def migrate_pool(pool: asyncpg.Pool, migrations: Migrations) -> list[int]:
    """`migrate` on one of the pool's connections: how a service applies its own folder."""
    async with pool.acquire() as conn:
        return await migrate(conn, migrations)
