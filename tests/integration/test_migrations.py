"""Each owner's migrations, applied under its own name: the kernel's first, then each
service's from its own folder; a second start applies nothing; a database migrated when
one global sequence held everything is converted without re-running a migration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.activator.migrations import MIGRATIONS as ACTIVATOR
from services.approval.migrations import MIGRATIONS as APPROVAL
from services.archiver.migrations import MIGRATIONS as ARCHIVER
from shared.registry.migrate import KERNEL, migrate, migration_files
from tests.conftest import Infra
from tests.integration.conftest import create_database

EVERY_OWNER = (KERNEL, APPROVAL, ARCHIVER, ACTIVATOR)


async def ledger(conn: asyncpg.Connection) -> set[tuple[str, int]]:
    rows = await conn.fetch("SELECT component, version FROM schema_migrations")
    return {(r["component"], r["version"]) for r in rows}


def every_version() -> set[tuple[str, int]]:
    return {(m.component, v) for m in EVERY_OWNER for v, _, _ in migration_files(m.folder)}


@pytest.fixture
async def conn(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(await create_database(infra))
    yield connection
    await connection.close()


async def test_each_owner_applies_its_own_folder_once(conn: asyncpg.Connection) -> None:
    for owner in EVERY_OWNER:
        assert await migrate(conn, owner) == [v for v, _, _ in migration_files(owner.folder)]
    assert await ledger(conn) == every_version()
    for owner in EVERY_OWNER:
        assert await migrate(conn, owner) == []
    tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
    assert {"outbox", "principals", "approval_ballots", "legal_holds", "activator_outcomes"} <= (
        tables
    )


async def test_a_database_from_the_single_sequence_days_is_converted_not_remigrated(
    conn: asyncpg.Connection,
) -> None:
    for owner in EVERY_OWNER:
        await migrate(conn, owner)
    # What such a database recorded: versions 1..5 of the one sequence, and neither the
    # archiver's outcomes nor the approval's own inbox (each owner's 002 came after the split)
    # nor principals' persons (the kernel's 004), nor the approval page's sessions (its 003),
    # nor the activator's `waiting` outcome (its 002).
    await conn.execute("DROP TABLE archiver_outcomes")
    await conn.execute("DROP TABLE approval_inbox")
    await conn.execute("DROP TABLE approval_sessions")
    await conn.execute("ALTER TABLE principals DROP COLUMN person")
    await conn.execute("DROP TABLE log_checkpoints")  # the kernel's 005 came later still
    await conn.execute(
        "ALTER TABLE activator_outcomes DROP CONSTRAINT activator_outcomes_outcome_check,"
        " ADD CONSTRAINT activator_outcomes_outcome_check"
        " CHECK (outcome IN ('committed', 'refused', 'failed'))"
    )
    await conn.execute("DROP TABLE schema_migrations")
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (1, 'registry'),"
        " (2, 'catalogue'), (3, 'approval'), (4, 'retention'), (5, 'activator')"
    )
    assert await migrate(conn, KERNEL) == [4, 5]  # converted: only what came after re-runs
    assert await migrate(conn, ACTIVATOR) == [2]
    await conn.execute(
        "INSERT INTO inbox (consumer, event_id) VALUES ('approval', 'e1'), ('validator', 'e2')"
    )
    assert await migrate(conn, APPROVAL) == [2, 3] and await migrate(conn, ARCHIVER) == [2]
    moved = await conn.fetch("SELECT event_id FROM approval_inbox")
    assert [r["event_id"] for r in moved] == ["e1"], "the approval's inbox rows moved, once"
    assert await ledger(conn) == every_version()


async def test_a_single_sequence_ledger_is_converted_by_what_each_file_held(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn, KERNEL)
    await conn.execute("ALTER TABLE principals DROP COLUMN person")  # 004 came after the split
    await conn.execute("DROP TABLE log_checkpoints")  # and 005 after it
    await conn.execute("DROP TABLE schema_migrations")
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL)"
    )
    # A ledger whose third file held principals alone: approval's tables were never made.
    await conn.execute(
        "INSERT INTO schema_migrations VALUES (1, 'registry'), (2, 'catalogue'), (3, 'principals')"
    )
    assert await migrate(conn, KERNEL) == [4, 5]
    assert await migrate(conn, APPROVAL) == [1, 2, 3]


def test_an_owners_folder_with_a_gap_or_a_stray_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "003_c.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="without gaps"):
        migration_files(tmp_path)
    (tmp_path / "2_b.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match=r"is not NNN_name\.sql"):
        migration_files(tmp_path)
