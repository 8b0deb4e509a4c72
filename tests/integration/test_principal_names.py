"""Principal names in the registry (issue #15), on the real PostgreSQL: a name is stored
canonical and belongs to a person, a name that could pass for another is refused, and a
principal made before migration 004 under another spelling is still found, revoked and
held to one active token per role under its canonical name."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.registry.migrate import KERNEL, Migrations, migrate, migration_files
from shared.registry.principals import (
    Principal,
    Role,
    add_principal,
    find_principal,
    hash_token,
    list_principals,
    person_of,
    persons_in,
    revoke_principal,
    roles_in,
)
from tests.conftest import Infra
from tests.integration.conftest import create_database

FULL_WIDTH_CAROL = "\uff43\uff41\uff52\uff4f\uff4c"  # NFKC: carol
CYRILLIC_A_CAROL = "c\u0430rol"
GREEK_OMICRON_CAROL = "car\u03bfl"


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(await create_database(infra), min_size=1, max_size=2)
    async with created.acquire() as conn:
        await migrate(conn, KERNEL)
    yield created
    await created.close()


async def test_a_name_is_stored_canonical_and_belongs_to_its_person(pool: asyncpg.Pool) -> None:
    token = await add_principal(pool, "Carol", Role.APPROVER)
    await add_principal(pool, FULL_WIDTH_CAROL, Role.AUDITOR)
    await add_principal(pool, "Carol-Ops", Role.OPERATOR, person="CAROL")

    assert await find_principal(pool, token) == Principal("carol", Role.APPROVER, "carol")
    listed = {(r.name, r.role, r.person) for r in await list_principals(pool)}
    assert listed == {
        ("carol", Role.APPROVER, "carol"),
        ("carol", Role.AUDITOR, "carol"),
        ("carol-ops", Role.OPERATOR, "carol"),
    }
    assert await person_of(pool, "carol-ops") == "carol"
    assert await person_of(pool, "CAROL ") == "carol"
    assert await person_of(pool, "dave") is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("carol ", "leading or trailing spaces"),
        (CYRILLIC_A_CAROL, "CYRILLIC (it reads as 'carol')"),
        (GREEK_OMICRON_CAROL, "GREEK (it reads as 'carol')"),
        ("c\u0251rol", "look like others"),  # Latin alpha
        ("caro1", "looks like 'carol'"),  # carol is another person's
        ("", "needs a name"),
    ],
)
async def test_a_name_that_could_pass_for_another_persons_is_refused_and_not_stored(
    pool: asyncpg.Pool, name: str, why: str
) -> None:
    await add_principal(pool, "carol", Role.APPROVER)
    with pytest.raises(ValueError) as refused:
        await add_principal(pool, name, Role.APPROVER, person="mallory")
    assert why in str(refused.value)
    assert [r.name for r in await list_principals(pool)] == ["carol"]


async def test_a_name_belongs_to_one_person(pool: asyncpg.Pool) -> None:
    await add_principal(pool, "carol", Role.APPROVER)
    with pytest.raises(ValueError, match="carol belongs to carol, not mallory"):
        await add_principal(pool, "Carol", Role.OPERATOR, person="mallory")


async def legacy_database(infra: Infra, tmp_path: Path) -> asyncpg.Pool:
    """A registry migrated up to 003 only, as before persons existed."""
    folder = tmp_path / "before_004"
    folder.mkdir()
    for version, _, path in migration_files(KERNEL.folder):
        if version <= 3:
            shutil.copy(path, folder / path.name)
    pool = await asyncpg.create_pool(await create_database(infra), min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn, Migrations(KERNEL.component, folder))
    return pool


async def test_a_principal_made_before_persons_is_found_by_its_canonical_name(
    infra: Infra, tmp_path: Path
) -> None:
    pool = await legacy_database(infra, tmp_path)
    try:
        # The old rule allowed capitals; such a row keeps its spelling through 004.
        await pool.execute(
            "INSERT INTO principals (name, role, token_hash) VALUES ('Carol', 'operator', $1)",
            hash_token("apt_old"),
        )
        async with pool.acquire() as conn:
            assert await migrate(conn, KERNEL) == [4, 5]  # persons, then later ones

        assert await find_principal(pool, "apt_old") == Principal("carol", Role.OPERATOR, "carol")
        assert await roles_in(pool)("carol") == {Role.OPERATOR}
        assert await persons_in(pool)(["carol", "CAROL"]) == {"carol": "carol", "CAROL": "carol"}
        assert await person_of(pool, "carol") == "carol"
        with pytest.raises(ValueError, match="Carol already holds an active operator token"):
            await add_principal(pool, "carol", Role.OPERATOR)

        assert await revoke_principal(pool, "carol", None) == [Role.OPERATOR]
        assert await roles_in(pool)("carol") == frozenset()
        token = await add_principal(pool, "carol", Role.OPERATOR)
        assert await find_principal(pool, token) == Principal("carol", Role.OPERATOR, "carol")
    finally:
        await pool.close()
