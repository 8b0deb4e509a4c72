"""The activator's answers on the real PostgreSQL: an approval that waits for a promote is
stored as `waiting` (migration 002), not as a refusal, and read back as such."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.activator.migrations import MIGRATIONS
from services.activator.plans import Outcome, RequestAction
from services.activator.store import PostgresActivatorStore
from shared.codec import Codec
from shared.registry.migrate import migrate_pool
from shared.registry.store import PostgresRegistry
from tests.conftest import Infra
from tests.integration.conftest import create_database

REVISION = "sha256:" + "cd" * 32


@pytest.fixture
async def store(infra: Infra) -> AsyncIterator[PostgresActivatorStore]:
    registry = await PostgresRegistry.connect(
        await create_database(infra), Codec.from_env(), max_size=2
    )
    await migrate_pool(registry.pool, MIGRATIONS)
    yield PostgresActivatorStore(registry.pool)
    await registry.close()


@pytest.mark.parametrize("outcome", list(Outcome))
async def test_every_outcome_is_stored_and_read_back(
    store: PostgresActivatorStore, outcome: Outcome
) -> None:
    await store.record_outcome(
        cause_id=f"approval-{outcome.value}",
        adapter="chat",
        environment="prod",
        action=RequestAction.APPROVED,
        revision=REVISION,
        outcome=outcome,
        detail="approved; prod starts rollouts by hand: waiting for `adapterctl promote`",
        principal="carol",
        evidence={},
    )
    found = await store.outcome(f"approval-{outcome.value}")
    assert found is not None and found["outcome"] == outcome.value
