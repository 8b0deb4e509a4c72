"""The registry in PostgreSQL keeps the registry contract (tests/contracts/registry.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.codec import Codec
from shared.registry.store import PostgresRegistry
from tests.conftest import Infra
from tests.contracts.registry import RegistryContract
from tests.integration.conftest import create_database


@pytest.fixture(scope="session")
async def registry(infra: Infra) -> AsyncIterator[PostgresRegistry]:
    database = await create_database(infra)
    reg = await PostgresRegistry.connect(database, Codec.from_env(), max_size=10)
    yield reg
    await reg.close()


class TestPostgresRegistry(RegistryContract):
    """Every scenario of the contract, on the real PostgreSQL started by infra/."""
