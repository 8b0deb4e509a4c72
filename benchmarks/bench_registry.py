"""PostgresRegistry + outbox relay: transitions committed and published per second, and the
commit-to-topic latency, against a raw confluent-kafka produce-and-consume round trip
measured in the same run on the same broker.

    make infra-up && .venv/bin/python -m benchmarks.bench_registry [--events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from typing import Any

import asyncpg
from confluent_kafka import Consumer

from benchmarks.common import Figure, infra_env, kafka_of, summary_ms, write_report
from shared.codec import Codec
from shared.events import RevisionRegistered, RevisionValidated
from shared.kafka.auth import Kafka, client_config, endpoint
from shared.kafka.producer import make_producer
from shared.kafka.topics import TopicSpec, admin_client, provision
from shared.registry.relay import OutboxRelay, RelayConfig
from shared.registry.store import PostgresRegistry
from tests.factories import lifecycle


class Arrivals(threading.Thread):
    """Consumes a topic and stamps when each key/event id arrives."""

    def __init__(self, bootstrap: Kafka, topic: str, expected: int, id_of: Any) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.expected = expected
        self.id_of = id_of
        self.ready = threading.Event()
        self.consumer = Consumer(
            {
                **client_config(bootstrap),
                "group.id": f"bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topic], on_assign=lambda *_: self.ready.set())

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while len(self.seen) < self.expected and time.monotonic() < deadline:
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            self.seen.setdefault(self.id_of(msg), time.perf_counter())
        self.consumer.close()


def _topic(bootstrap: Kafka, partitions: int = 6) -> str:
    name = f"bench.{uuid.uuid4().hex[:8]}"
    provision(admin_client(bootstrap), [TopicSpec(name, partitions)])
    return name


def raw_round_trip(bootstrap: Kafka, n: int) -> dict[str, Any]:
    """Produce n records one at a time (waiting for each ack, as the relay does per commit)
    and time each until a consumer has it."""
    topic = _topic(bootstrap)
    arrivals = Arrivals(bootstrap, topic, n + 1, lambda m: m.key().decode())
    arrivals.start()
    while not arrivals.ready.is_set():
        arrivals.consumer  # noqa: B018 - wait for the partition assignment
        time.sleep(0.05)
    producer = make_producer(bootstrap)
    producer.produce(topic, key=b"warmup", value=b"x")
    producer.flush(30)
    while "warmup" not in arrivals.seen:
        time.sleep(0.01)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(n):
        key = f"k{i}"
        sent[key] = time.perf_counter()
        producer.produce(topic, key=key.encode(), value=b"x" * 600)
        producer.flush(10)
    arrivals.join()
    elapsed = time.perf_counter() - started
    latencies = [arrivals.seen[k] - sent[k] for k in sent if k in arrivals.seen]
    return {"per_s": n / elapsed, **summary_ms(latencies)}


async def registry_pipeline(
    bootstrap: Kafka, dsn_base: str, n: int, writers: int
) -> dict[str, Any]:
    """Commit n transitions (register + validate over n/2 revisions, `writers` adapters at
    once) and time each from its commit returning to a consumer having it on the topic."""
    database = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn_base)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    dsn = dsn_base.rsplit("/", 1)[0] + "/" + database
    topic = _topic(bootstrap)
    codec = Codec.from_env()
    registry = await PostgresRegistry.connect(dsn, codec, max_size=writers + 2)
    warmup = 20
    arrivals = Arrivals(
        bootstrap, topic, n + warmup, lambda m: dict(m.headers())["event_id"].decode()
    )
    arrivals.start()
    while not arrivals.ready.is_set():
        await asyncio.sleep(0.05)
    relay = OutboxRelay(RelayConfig(dsn=dsn, kafka=endpoint(bootstrap), topic=topic))
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    # Warm-up, excluded from the figures: leader election, producer id, first metadata.
    for r in range(warmup // 2):
        for cls in (RevisionRegistered, RevisionValidated):
            await registry.transition(lifecycle(cls, "bench-warmup", f"r{r}"))
    while len(arrivals.seen) < warmup:
        await asyncio.sleep(0.01)
    committed: dict[str, float] = {}

    async def writer(w: int) -> None:
        adapter = f"bench-{w}"
        for r in range(n // writers // 2):
            for cls in (RevisionRegistered, RevisionValidated):
                event = lifecycle(cls, adapter, f"r{r}")
                await registry.transition(event)
                committed[event.envelope.event_id] = time.perf_counter()

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    commit_elapsed = time.perf_counter() - started
    await asyncio.to_thread(arrivals.join)
    elapsed = time.perf_counter() - started
    stop.set()
    await relay_task
    await registry.close()
    latencies = [arrivals.seen[k] - committed[k] for k in committed if k in arrivals.seen]
    return {
        "committed_per_s": len(committed) / commit_elapsed,
        "published_per_s": (len(arrivals.seen) - warmup) / elapsed,
        "events": len(committed),
        "writers": writers,
        **summary_ms(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=10)
    args = parser.parse_args()
    env = infra_env()
    bootstrap, dsn = kafka_of(env), env["DATABASE_URL"]

    raw = raw_round_trip(bootstrap, args.events)
    pipeline = asyncio.run(registry_pipeline(bootstrap, dsn, args.events, args.writers))
    figures = [
        Figure(
            "commit-to-topic latency p50",
            pipeline["p50_ms"],
            raw["p50_ms"],
            "ms",
            "raw produce→consume p50",
            higher_is_better=False,
        ),
        Figure(
            "commit-to-topic latency p99",
            pipeline["p99_ms"],
            raw["p99_ms"],
            "ms",
            "raw produce→consume p99",
            higher_is_better=False,
        ),
        Figure(
            "transitions published per s",
            pipeline["published_per_s"],
            raw["per_s"],
            "/s",
            "raw acked produce→consume per s",
            higher_is_better=True,
        ),
    ]
    write_report("registry", figures, {"raw": raw, "pipeline": pipeline})


if __name__ == "__main__":
    main()
