"""The outbox relay publishes every committed transition in per-adapter order, exactly once
after dedupe, even when its leader is SIGKILLed mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from shared.codec import Codec
from shared.events import RevisionRegistered, RevisionValidated
from shared.kafka.reader import LogRecord, read_topic
from shared.kafka.topics import TopicSpec, admin_client, provision
from shared.registry.relay import OutboxRelay, RelayConfig
from shared.registry.store import PostgresRegistry
from tests.conftest import REPO, Infra
from tests.eventually import eventually
from tests.factories import lifecycle
from tests.integration.conftest import create_database
from tests.pipeline.chaos import relay_leader_pid


@pytest.fixture
async def database(infra: Infra) -> str:
    """A database of its own, so this test's relay sees only this test's outbox."""
    return await create_database(infra)


def _topic(infra: Infra, name: str, partitions: int = 6) -> str:
    provision(admin_client(infra.kafka), [TopicSpec(name, partitions)])
    return name


async def _commit_journeys(registry: PostgresRegistry, adapters: list[str], revisions: int) -> int:
    """Register and validate `revisions` revisions of every adapter, adapters concurrently."""

    async def one(adapter: str) -> int:
        for r in range(revisions):
            await registry.transition(lifecycle(RevisionRegistered, adapter, f"r{r}"))
            await registry.transition(lifecycle(RevisionValidated, adapter, f"r{r}"))
        return revisions * 2

    return sum(await asyncio.gather(*(one(a) for a in adapters)))


def _wait_for_events(
    infra: Infra, topic: str, expected: int, timeout_s: float = 120
) -> list[LogRecord]:
    def enough() -> list[LogRecord]:
        records = read_topic(infra.kafka, topic)
        distinct = len({r.header("event_id") for r in records})
        assert distinct >= expected, f"{topic}: {distinct} distinct events, expected {expected}"
        return records

    return eventually(enough, timeout=timeout_s, interval=0.5)


def _per_adapter_sequences(records: list[LogRecord]) -> tuple[dict[str, list[int]], int]:
    """Each adapter's seqs in log order, duplicates (same event id) removed; and their count."""
    codec = Codec.from_env()
    seen: set[str] = set()
    duplicates = 0
    sequences: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        event = codec.decode(record.value or b"")
        envelope = event.envelope  # type: ignore[attr-defined]
        partitions[envelope.adapter].add(record.partition)
        if envelope.event_id in seen:
            duplicates += 1
            continue
        seen.add(envelope.event_id)
        sequences[envelope.adapter].append(envelope.seq)
    assert all(len(p) == 1 for p in partitions.values()), "an adapter spans partitions"
    return sequences, duplicates


async def test_a_thousand_transitions_over_fifty_adapters_arrive_in_order_without_gaps(
    infra: Infra, database: str, unique: Callable[[str], str]
) -> None:
    topic = _topic(infra, unique("lifecycle"))
    registry = await PostgresRegistry.connect(database, Codec.from_env(), max_size=10)
    relay = OutboxRelay(RelayConfig(dsn=database, kafka=infra.kafka, topic=topic))
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        adapters = [unique(f"a{i}") for i in range(50)]
        committed = await _commit_journeys(registry, adapters, revisions=10)
        assert committed == 1000
        records = await asyncio.to_thread(_wait_for_events, infra, topic, 1000)
    finally:
        stop.set()
        await running
        await registry.close()

    sequences, duplicates = _per_adapter_sequences(records)
    assert duplicates == 0, "a healthy relay publishes each row once"
    assert set(sequences) == set(adapters)
    for adapter, seqs in sequences.items():
        assert seqs == list(range(1, 21)), f"{adapter}: {seqs}"
    left = await asyncpg.connect(database)
    assert await left.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    await left.close()


async def test_killing_the_relay_leader_mid_stream_loses_nothing_once_a_standby_takes_over(
    infra: Infra, database: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    """Duplicates on the wire are tolerated here (a leader killed between delivery and
    marking republishes); consumers and `audit verify` dedupe them by event id. Gaps and
    reorderings are not tolerated."""
    topic = _topic(infra, unique("lifecycle"))
    registry = await PostgresRegistry.connect(database, Codec.from_env(), max_size=10)
    env = {
        **infra.env(),
        "DATABASE_URL": database,
        "LIFECYCLE_TOPIC": topic,
        "LOG_SIGNING_KEY": str(tmp_path / "log.key"),
        "COLD_STORAGE_URL": str(tmp_path / "cold"),
    }
    relays = [
        subprocess.Popen([sys.executable, "-m", "shared.registry"], cwd=REPO, env=env)
        for _ in range(2)
    ]
    try:
        adapters = [unique(f"k{i}") for i in range(30)]
        # A leader first, so the kill lands mid-stream however long the relays take to start.
        leader = await relay_leader_pid(database, timeout_s=30)
        writing = asyncio.create_task(_commit_journeys(registry, adapters, revisions=10))
        await asyncio.sleep(0.3)  # mid-stream: transitions are still being committed
        assert not writing.done(), "the writers finished before the kill: make the run longer"
        os.kill(leader, signal.SIGKILL)
        committed = await writing
        records = await asyncio.to_thread(_wait_for_events, infra, topic, committed)
        successor = await relay_leader_pid(database, timeout_s=30)
        assert successor != leader
    finally:
        for relay in relays:
            if relay.poll() is None:
                relay.terminate()
            relay.wait(timeout=30)
        await registry.close()

    sequences, duplicates = _per_adapter_sequences(records)
    print(f"relay failover: {committed} events, {duplicates} duplicates on the wire")
    for adapter in adapters:
        assert sequences[adapter] == list(range(1, 21)), f"{adapter}: {sequences[adapter]}"
