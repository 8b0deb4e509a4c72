"""The pytest-docker profile: pytest-docker starts docker-compose.yml's Kafka and
PostgreSQL (tests/conftest.py's `docker_setup`), and both answer on the ports
infra/up.sh uses. Marked `docker`: it needs a Docker engine, so CI and `make test`
(`-m "not gpu and not docker"`) leave it out; run it with `.venv/bin/pytest -m docker`.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from shared.kafka.topics import admin_client
from tests.conftest import COMPOSED, _reachable

pytestmark = pytest.mark.docker


async def test_compose_kafka_and_postgres_answer(docker_services: Any) -> None:
    docker_services.wait_until_responsive(check=lambda: _reachable(COMPOSED), timeout=180, pause=1)
    metadata = admin_client(COMPOSED.kafka).list_topics(timeout=30)
    assert metadata.brokers, "Kafka answered with no brokers"
    connection = await asyncpg.connect(COMPOSED.database_url, timeout=30)
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await connection.close()
