"""Pipeline throughput: validated revisions evaluated per second by the real evaluator service
(its handler, registry commits and reports; the instant oracle backend, so no model time) with
the relay publishing its verdicts, and how that scales with lifecycle partitions and evaluator
instances; against a bare confluent-kafka consume→produce echo loop (one process, 10,000
messages of the same size, a 1-partition topic) measured in the same run.

The registry is seeded once (revisions over 500 adapters, each registered and validated for
one environment, its manifest in the artifact store) and copied per configuration. In each,
the evaluators start on an empty lifecycle topic; once their group has settled, the relay
releases the backlog, and the clock runs until every revision has its verdict on the topic.
By default (what `make bench` runs) each of 1x1, 2x2 and 4x4 drains all 10,000 revisions
(about 6 minutes on two cores); `--configs 1x1,2x2,4x4,4x1` adds partitions without more
instances, and `--revisions 1500` is a quick look.

    make infra-up && .venv/bin/python -m benchmarks.bench_throughput [--revisions 10000]
        [--configs 1x1,2x2,4x4]   # PARTITIONSxINSTANCES
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupState, TopicPartition

from benchmarks.backlog import admin_sql, seed
from benchmarks.common import (
    Figure,
    cpu_seconds,
    delete_topics,
    infra_env,
    infra_of,
    machine_cpu,
    write_report,
)
from shared.artifacts import LocalArtifactStore
from shared.kafka.app import make_app
from shared.kafka.auth import Kafka, client_config
from shared.kafka.producer import make_producer
from shared.kafka.topics import TopicSpec, admin_client, dlq_of, provision
from shared.settings import KernelSettings
from tests.conftest import Infra
from tests.pipeline.instant import write_instant_suite
from tests.stack import Stack

VERDICTS = ("RevisionEvaluated", "RevisionEvaluationFailed")


class Tally(threading.Thread):
    """Counts the lifecycle topic's events by type (the relay's `event_type` header) and
    stamps when each verdict arrives."""

    def __init__(self, bootstrap: Kafka, topic: str) -> None:
        super().__init__(daemon=True)
        self.counts: dict[str, int] = {}
        self.verdicts: list[float] = []
        self.backlog = 0
        self.published = 0.0  # when the backlog's last RevisionValidated arrived
        self.stop = threading.Event()
        self.consumer = Consumer(
            {
                **client_config(bootstrap),
                "group.id": f"bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topic])

    def run(self) -> None:
        while not self.stop.is_set():
            for msg in self.consumer.consume(500, timeout=0.05):
                if msg.error():
                    continue
                event_type = cast(bytes, dict(msg.headers() or [])["event_type"])
                kind = event_type.decode().rsplit(".", 1)[-1]
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if kind in VERDICTS:
                    self.verdicts.append(time.perf_counter())
                elif kind == "RevisionValidated" and self.counts[kind] == self.backlog:
                    self.published = time.perf_counter()
        self.consumer.close()

    def wait(self, kinds: tuple[str, ...], n: int, timeout_s: float, stack: Stack) -> bool:
        """Until n events of `kinds` are on the topic (False after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while sum(self.counts.get(kind, 0) for kind in kinds) < n:
            if time.monotonic() > deadline:
                return False
            for name, process in stack.processes.items():
                assert process.poll() is None, f"{name} died:\n{stack.log_of(name)}"
            time.sleep(0.05)
        return True


def group_of(env: dict[str, str]) -> str:
    """The evaluators' consumer group: faust's app id, as the service names it."""
    return str(make_app(KernelSettings.from_env("gpu_evaluator", env)).conf.id)


def wait_assigned(group_id: str, topic: str, owners: int, stack: Stack) -> None:
    """Until the evaluators' group is stable with every partition of `topic` assigned, to
    `owners` distinct members."""
    admin = admin_client(stack.infra.kafka)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        group = admin.describe_consumer_groups([group_id])[group_id].result(timeout=10)
        assigned = {
            tp.partition: member.member_id
            for member in group.members
            for tp in (member.assignment.topic_partitions if member.assignment else ())
            if tp.topic == topic
        }
        partitions = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
        stable = group.state == ConsumerGroupState.STABLE
        if stable and len(assigned) == partitions and len(set(assigned.values())) == owners:
            return
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} died:\n{stack.log_of(name)}"
        time.sleep(0.2)
    raise TimeoutError(f"{group_id} never settled on {topic} with {owners} members")


def echo_baseline(bootstrap: Kafka, n: int, size: int) -> dict[str, Any]:
    """Consume n records of `size` bytes from a 1-partition topic and produce each to
    another (acks=all, idempotent, as the services' producer), until all are acknowledged."""
    source, sink = (f"bench.echo.{uuid.uuid4().hex[:8]}" for _ in range(2))
    provision(admin_client(bootstrap), [TopicSpec(source, 1), TopicSpec(sink, 1)])
    producer = make_producer(bootstrap)
    for i in range(n):
        producer.produce(source, key=f"tput-{i % 500:03d}".encode(), value=os.urandom(size))
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(source, 0, OFFSET_BEGINNING)])
    echo = make_producer(bootstrap)
    started, seen = time.perf_counter(), 0
    while seen < n:
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error():
                continue
            echo.produce(sink, key=msg.key(), value=msg.value())
            echo.poll(0)
            seen += 1
    remaining = echo.flush(60)
    elapsed = time.perf_counter() - started
    consumer.close()
    delete_topics(bootstrap, [source, sink])
    assert remaining == 0, f"{remaining} echoes unacknowledged"
    return {"per_s": n / elapsed, "seconds": round(elapsed, 3), "messages": n, "bytes": size}


async def drain(
    infra: Infra, root: Path, template: str, store: Path, config: tuple[int, int], n: int,
    timeout_s: float, log_level: str,
) -> dict[str, Any]:  # fmt: skip
    """One configuration: a copy of the seeded registry and store, a fresh lifecycle topic
    with `partitions`, the relay, then `instances` evaluators until n verdicts are out."""
    partitions, instances = config
    stack = Stack(infra, root / f"p{partitions}i{instances}")
    await admin_sql(
        infra.database_url, f'CREATE DATABASE "stack_{stack.token}" TEMPLATE "{template}"'
    )
    topic = stack.lifecycle_topic
    provision(
        admin_client(infra.kafka),
        [TopicSpec(topic, partitions), TopicSpec(dlq_of(topic), 1)],
    )
    shutil.copytree(store, stack.artifacts, copy_function=os.link)  # blobs are write-once
    suites = stack.root / "suites"
    write_instant_suite(suites)
    tally = Tally(infra.kafka, topic)
    tally.backlog = n
    tally.start()
    result: dict[str, Any] = {"partitions": partitions, "instances": instances, "revisions": n}
    try:
        # A consumer group of its own: evaluators of other stacks on this shared broker
        # then neither join nor rebalance it.
        extra = {
            "EVALUATOR_SUITES_ROOT": str(suites),
            "RUN_RELAY": "0",
            "LOG_LEVEL": log_level,
            "CONSUMER_GROUP_PREFIX": f"bench-{stack.token}",
        }
        group_id = group_of(stack.env(**extra))
        started = time.perf_counter()
        for i in range(instances):
            stack.start(f"evaluator{i}", module="tests.pipeline.instant", **extra)
        # Measure a settled group, not the start-up: imports and rebalances happen once per
        # deployment, and would otherwise weigh more the more instances there are.
        wait_assigned(group_id, topic, min(partitions, instances), stack)
        result["instances_ready_s"] = round(time.perf_counter() - started, 2)
        result["consumer_group"] = group_id
        evaluators = {name: cpu_seconds(p.pid) for name, p in stack.processes.items()}
        machine = machine_cpu()
        started = time.perf_counter()
        stack.start("relay", module="shared.registry", LOG_LEVEL=log_level)
        done = tally.wait(VERDICTS, n, timeout_s, stack)
        ended = time.perf_counter()
        busy, total = (after - before for after, before in zip(machine_cpu(), machine, strict=True))
        cpu = {name: round(cpu_seconds(stack.processes[name].pid) - used, 1)
               for name, used in evaluators.items()}  # fmt: skip
        cpu["relay"] = round(cpu_seconds(stack.processes["relay"].pid), 1)
        stamps = list(tally.verdicts)
        evaluated = tally.counts.get("RevisionEvaluated", 0)
        first = stamps[0] if stamps else ended
        result |= {
            "complete": done,
            "evaluated": evaluated,
            "failed": tally.counts.get("RevisionEvaluationFailed", 0),
            "backlog_published_s": round(tally.published - started, 2) if tally.published else None,
            "first_verdict_s": round(first - started, 2),
            "drain_s": round(ended - started, 2),
            "per_s": evaluated / (ended - started),
            # Where the CPU went while draining: each process's seconds, and how busy the
            # whole machine was (every process on it, ours or not; 1.0 is all cores).
            "cpu_s": cpu,
            "machine_busy_share": round(busy / total, 3),
            "logs": str(stack.root),
        }
    finally:
        tally.stop.set()
        stack.stop()
        tally.join(10)
        await admin_sql(infra.database_url, f'DROP DATABASE IF EXISTS "stack_{stack.token}"')
        delete_topics(infra.kafka, [topic, dlq_of(topic)])
        shutil.rmtree(stack.artifacts, ignore_errors=True)
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = infra_env()
    infra = infra_of(env)
    root = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    template = f"bench_tput_{uuid.uuid4().hex[:8]}"
    await admin_sql(infra.database_url, f'CREATE DATABASE "{template}"')
    dsn = infra.database_url.rsplit("/", 1)[0] + "/" + template
    store = root / "seed-artifacts"
    configs = []
    try:
        started = time.perf_counter()
        size = await seed(dsn, LocalArtifactStore(store), args.revisions, args.adapters)
        seeded_s = time.perf_counter() - started
        baseline = echo_baseline(infra.kafka, args.echo_messages, round(size))
        for config in args.configs:
            configs.append(
                await drain(infra, root, template, store, config, args.revisions, args.timeout_s,
                            args.log_level)
            )  # fmt: skip
            print(configs[-1], flush=True)
    finally:
        await admin_sql(infra.database_url, f'DROP DATABASE IF EXISTS "{template}"')
        shutil.rmtree(store, ignore_errors=True)
    return {"seed_s": round(seeded_s, 1), "baseline": baseline, "configs": configs}


def parse_configs(text: str) -> list[tuple[int, int]]:
    pairs = [part.split("x") for part in text.split(",")]
    return [(int(p), int(i)) for p, i in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revisions", type=int, default=10_000, help="per configuration")
    parser.add_argument("--adapters", type=int, default=500)
    parser.add_argument("--echo-messages", type=int, default=10_000, help="the baseline's")
    parser.add_argument("--configs", type=parse_configs, default=parse_configs("1x1,2x2,4x4"))
    parser.add_argument("--timeout-s", type=float, default=600, help="per configuration")
    parser.add_argument("--log-level", default="info", help="the services' (info in production)")
    args = parser.parse_args()
    measured = asyncio.run(run(args))
    baseline = measured["baseline"]
    figures = []
    one = next(
        (c for c in measured["configs"] if (c["partitions"], c["instances"]) == (1, 1)), None
    )
    for c in measured["configs"]:
        label = f"{c['partitions']} partition(s) x {c['instances']} evaluator(s)"
        figures.append(
            Figure(f"revisions evaluated/s, {label}", c["per_s"], baseline["per_s"], "/s",
                   "bare consume→produce echo, 1 partition", higher_is_better=True)
        )  # fmt: skip
        if one is not None and c is not one:
            figures.append(
                Figure(f"scaling, {label}", c["per_s"], one["per_s"], "/s",
                       "1 partition x 1 evaluator", higher_is_better=True)
            )  # fmt: skip
    write_report("throughput", figures, {**measured, "cores": os.cpu_count()})


if __name__ == "__main__":
    main()
