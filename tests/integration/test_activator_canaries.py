"""`GET /canaries` on the activator's own tables in the real PostgreSQL: every canary step
being observed, across adapters, with its progress against the environment's policy, and
the evidence of the current step only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.activator.migrations import MIGRATIONS
from services.activator.ports import CanaryStep
from services.activator.store import PostgresActivatorStore
from services.activator.web import make_app
from shared.codec import Codec
from shared.registry.catalogue_store import PostgresCatalogue
from shared.registry.migrate import migrate_pool
from shared.registry.store import PostgresRegistry
from tests.conftest import Infra
from tests.fakes.activator import environment_spec
from tests.integration.conftest import create_database

REVISION = "sha256:" + "ab" * 32


@pytest.fixture
async def client(infra: Infra) -> AsyncIterator[tuple[TestClient, PostgresActivatorStore]]:
    registry = await PostgresRegistry.connect(
        await create_database(infra), Codec.from_env(), max_size=4
    )
    await migrate_pool(registry.pool, MIGRATIONS)
    store, catalogue = PostgresActivatorStore(registry.pool), PostgresCatalogue(registry.pool)
    await catalogue.put_environment(environment_spec("prod", canary_steps=(10, 50, 100)))
    await store.merge_analysis_settings("prod", {"min_samples": 40, "step_interval_s": 600}, "ada")
    async with TestClient(TestServer(make_app(store, catalogue))) as test_client:
        yield test_client, store
    await registry.close()


def step(adapter: str, environment: str, percent: int) -> CanaryStep:
    return CanaryStep(
        adapter=adapter,
        environment=environment,
        revision=REVISION,
        traffic_percent=percent,
        step_started_at=datetime.now(UTC) - timedelta(seconds=60),
        baseline={"http://replica-1": {}},
    )


async def test_every_canary_is_listed_with_its_progress_and_only_its_current_evidence(
    client: tuple[TestClient, PostgresActivatorStore],
) -> None:
    http, store = client
    await store.start_canary_step(step("chat", "prod", 10))
    await store.note_decision(
        "chat",
        "prod",
        {"traffic_percent": "10", "canary.requests": "7", "decision": "hold", "reason": "wait"},
    )
    await store.start_canary_step(step("summarizer", "prod", 50))  # begun, not judged
    await store.start_canary_step(step("chat", "staging", 10))  # another environment

    listed = await (await http.get("/canaries", params={"environment": "prod"})).json()
    every = await (await http.get("/canaries")).json()

    chat, summarizer = listed["canaries"]
    assert (chat["adapter"], chat["step"], chat["steps"], chat["samples"]) == ("chat", 1, 3, 7)
    assert (chat["min_samples"], chat["verdict"], chat["reason"]) == (40, "hold", "wait")
    assert 530 <= chat["next_step_in_s"] <= 540
    assert (summarizer["step"], summarizer["samples"], summarizer["verdict"]) == (
        2,
        0,
        "not judged yet",
    )
    assert [(c["environment"], c["adapter"]) for c in every["canaries"]] == [
        ("prod", "chat"),
        ("prod", "summarizer"),
        ("staging", "chat"),
    ]
