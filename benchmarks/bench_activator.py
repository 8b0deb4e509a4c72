"""Activator: rollback latency from the operator's command to every replica serving the
restored revision (p50, p99 over 100 rollbacks), and activation latency from RevisionApproved
to RevisionActivated under a zero-length canary policy; next to a raw Kafka produce→consume
round trip and a bare HTTP round trip to a replica, measured in the same run.

The activator runs as its own process with two reference-server replicas (the kit's tiny
base on the CPU); every cycle approves a new revision (activated at once, cold loads on both
replicas), then rolls it back to the one before (warm: still loaded as the rollback target).

    make infra-up && .venv/bin/python -m benchmarks.bench_activator [--rollbacks 100]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer

from benchmarks.bench_registry import raw_round_trip
from benchmarks.common import Figure, infra_env, infra_of, kafka_of, summary_ms, write_report
from shared.artifacts import LocalArtifactStore
from shared.codec import Codec
from shared.events import (
    Actor,
    BaseModelRef,
    CommandHeader,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
    RollbackRevision,
)
from shared.hf_folder import chat_template_hash, tokenizer_hash
from shared.kafka.auth import Kafka, client_config
from shared.kafka.producer import make_producer, publish
from shared.manifest import Manifest, revision_digest
from shared.modelkit.cache import Kit, kit
from shared.registry.store import PostgresRegistry, Step
from tests.factories import lifecycle
from tests.integration.test_activator import kit_files, start_replica, wait_healthy
from tests.stack import Stack

ENV = "bench"
WARMUP = 3


class Activations(threading.Thread):
    """Stamps when each revision's RevisionActivated reaches the lifecycle topic."""

    def __init__(self, bootstrap: Kafka, topic: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.codec = Codec.from_env()
        self.consumer = Consumer(
            {
                **client_config(bootstrap),
                "group.id": f"bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topic])

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self.consumer.poll(0.02)
            if msg is None or msg.error():
                continue
            event = self.codec.decode(msg.value())
            if type(event).__name__ == "RevisionActivated":
                self.seen.setdefault(event.envelope.revision, time.perf_counter())
        self.consumer.close()


async def approve_variant(
    registry: PostgresRegistry,
    store: LocalArtifactStore,
    tiny: Kit,
    root: Path,
    adapter: str,
    i: int,
) -> str:
    """A copy of the good adapter with one more file (so a new revision), approved in ENV."""
    folder = root / "variants" / f"v{i}"
    shutil.copytree(tiny.good, folder)
    (folder / "variant.txt").write_text(f"variant {i}\n")
    files = []
    for path, entry in kit_files(folder):
        store.put_stream(io.BytesIO(path.read_bytes()), max_bytes=1 << 26)
        files.append(entry)
    revision = revision_digest(files)
    base = BaseModelRef(model_id=tiny.model_ids["main"], revision=tiny.revisions["main"])
    manifest = Manifest(
        adapter=adapter,
        revision=revision,
        files=tuple(files),
        base_model_id=base.model_id,
        base_model_revision=base.revision,
        tokenizer_revision="tok-1",
        tokenizer_hash=tokenizer_hash(tiny.base),
        chat_template_hash=chat_template_hash(tiny.base),
        quantization_profile="bf16",
        submitter="trainer",
        trained_event_id=str(uuid.uuid4()),
        source_uri=f"file://{folder}",
    )
    digest = store.put_manifest(manifest)
    events = [
        lifecycle(RevisionRegistered, adapter, revision, manifest_digest=digest, base_model=base),
        lifecycle(RevisionValidated, adapter, revision),
        lifecycle(RevisionEvaluated, adapter, revision, ENV),
        lifecycle(RevisionApproved, adapter, revision, ENV, manifest_digest=digest),
    ]
    await registry.commit([Step(e) for e in events])
    return revision


def lora(adapter: str, revision: str) -> str:
    return f"{adapter}@{revision.removeprefix('sha256:')[:16]}"


def wait_routed(client: httpx.Client, replicas: list[str], adapter: str, name: str) -> None:
    """Until every replica routes the adapter's requests to `name` (polled every 5 ms)."""
    pending = list(replicas)
    deadline = time.monotonic() + 60
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pending} never routed {adapter} to {name}")
        url = pending[0]
        route = client.get(f"{url}/v1/routing").json()["adapters"].get(adapter) or {}
        if route.get("active") == name:
            pending.pop(0)
        else:
            time.sleep(0.005)  # tighter polling would starve the replicas of CPU


async def cycles(stack: Stack, tiny: Kit, replicas: list[str], n: int) -> dict[str, Any]:
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env())
    store = LocalArtifactStore(stack.artifacts)
    watcher = Activations(stack.infra.kafka, stack.lifecycle_topic)
    watcher.start()
    producer = make_producer(stack.infra.kafka)
    codec, adapter = Codec.from_env(), "bench-adapter"
    activation: list[float] = []
    rollback: list[float] = []
    with httpx.Client(timeout=30) as client:
        first = await approve_variant(registry, store, tiny, stack.root, adapter, 0)
        await asyncio.to_thread(wait_routed, client, replicas, adapter, lora(adapter, first))
        for i in range(1, n + WARMUP + 1):
            committed = time.perf_counter()
            revision = await approve_variant(registry, store, tiny, stack.root, adapter, i)
            committed = time.perf_counter()  # the commit returned: RevisionApproved is durable
            await asyncio.to_thread(wait_routed, client, replicas, adapter, lora(adapter, revision))
            while revision not in watcher.seen:
                await asyncio.sleep(0.001)
            header = CommandHeader(
                command_id=str(uuid.uuid4()),
                adapter=adapter,
                environment=ENV,
                actor=Actor(principal="bench", role="operator"),
                issued_at=datetime.now(UTC),
                correlation_id=str(uuid.uuid4()),
            )
            value = codec.encode(RollbackRevision(header=header))
            started = time.perf_counter()
            publish(producer, stack.commands_topic, key=adapter.encode(), value=value)
            await asyncio.to_thread(wait_routed, client, replicas, adapter, lora(adapter, first))
            if i > WARMUP:
                rollback.append(time.perf_counter() - started)
                activation.append(watcher.seen[revision] - committed)
        started_http = []
        for _ in range(200):
            t0 = time.perf_counter()
            client.get(f"{replicas[0]}/v1/routing")
            started_http.append(time.perf_counter() - t0)
    watcher.stop.set()
    await registry.close()
    return {
        "rollback": summary_ms(rollback),
        "activation": summary_ms(activation),
        "http": summary_ms(started_http),
    }


async def run(n: int, log_level: str) -> dict[str, Any]:
    env = infra_env()
    infra = infra_of(env)
    stack = Stack(infra, Path(tempfile.mkdtemp(prefix="bench-activator-")))
    await stack.create()
    tiny = kit()
    base = f"{tiny.model_ids['main']}@{tiny.revisions['main']}"
    stack.adapterctl(
        "base",
        "register",
        str(tiny.base),
        "--id",
        tiny.model_ids["main"],
        "--revision",
        tiny.revisions["main"],
        "--tokenizer-revision",
        "tok-1",
    )
    stack.adapterctl("env", "set", ENV, "--base", base, "--canary-steps", "100")
    try:
        replicas = [start_replica(stack, tiny, f"replica{i}") for i in (1, 2)]
        stack.start(
            "activator",
            ACTIVATOR_ANALYSIS_INTERVAL_S="5",
            ACTIVATOR_ROUTING_DIR=str(stack.root / "routing"),
            LOG_LEVEL=log_level,
        )
        wait_healthy(stack, replicas)
        # The activator's own setting, set through its API as the stack's admin.
        stack.adapterctl("env", "replicas", ENV, *replicas)
        return {**await cycles(stack, tiny, replicas, n), "logs": str(stack.root)}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollbacks", type=int, default=100)
    parser.add_argument("--log-level", default="warning", help="the activator's (debug: timings)")
    args = parser.parse_args()
    raw = raw_round_trip(kafka_of(infra_env()), 200)
    measured = asyncio.run(run(args.rollbacks, args.log_level))
    rollback, activation = measured["rollback"], measured["activation"]
    figures = [
        Figure(
            "rollback: command → every replica serving the target, p50",
            rollback["p50_ms"],
            raw["p50_ms"],
            "ms",
            "raw Kafka produce→consume p50",
            higher_is_better=False,
        ),
        Figure(
            "rollback: command → every replica serving the target, p99",
            rollback["p99_ms"],
            raw["p99_ms"],
            "ms",
            "raw Kafka produce→consume p99",
            higher_is_better=False,
        ),
        Figure(
            "activation: RevisionApproved → RevisionActivated, p50",
            activation["p50_ms"],
            raw["p50_ms"],
            "ms",
            "raw Kafka produce→consume p50",
            higher_is_better=False,
        ),
        Figure(
            "activation: RevisionApproved → RevisionActivated, p99",
            activation["p99_ms"],
            raw["p99_ms"],
            "ms",
            "raw Kafka produce→consume p99",
            higher_is_better=False,
        ),
    ]
    write_report("activator", figures, {"raw_kafka": raw, **measured, "replicas": 2})


if __name__ == "__main__":
    main()
