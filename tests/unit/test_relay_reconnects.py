"""The relay rides out a lost database connection, whichever way asyncpg reports it: a
connection cut while a statement is in flight (InternalClientError, seen when PostgreSQL
shuts down under the relay) is retried like a refused connection, never a crash."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.kafka.auth import KafkaEndpoint
from shared.registry.relay import OutboxRelay, RelayConfig


@pytest.mark.parametrize(
    "lost",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 12"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_lost_connection_is_retried_not_raised(
    lost: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = OutboxRelay(RelayConfig("postgresql://nowhere", KafkaEndpoint("127.0.0.1:1")))
    stop = asyncio.Event()
    attempts: list[int] = []

    async def session(_stop: asyncio.Event) -> None:
        attempts.append(1)
        if len(attempts) == 2:
            stop.set()
        raise lost

    async def no_wait(_stop: Any, _seconds: float) -> bool:
        return stop.is_set()

    monkeypatch.setattr(relay, "_session", session)
    monkeypatch.setattr("shared.registry.relay._wait", no_wait)
    await asyncio.wait_for(relay.run(stop), timeout=5)
    assert len(attempts) == 2 and not relay.is_leader
