"""The whole pipeline on a private stack, driven like production: every service its own
supervised process, two serving replicas, a training cluster submitting adapters, an
approver bot, and the outcome checked from the lifecycle log and the registry.

    pipeline = await Pipeline.start(infra, root)
    await pipeline.promote(500)          # submits; the services do the rest
    await pipeline.wait()                # every revision reached its terminal event
    (await pipeline.report()).raise_if_bad()
    pipeline.audit()                     # `adapterctl audit verify` passes
    await pipeline.stop()
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from confluent_kafka import Producer

from infra import processes
from shared.events import BaseModelRef
from shared.kafka.auth import Kafka
from shared.kafka.producer import make_producer
from shared.modelkit.cache import Kit, kit
from tests.conftest import Infra
from tests.eventually import eventually_async
from tests.pipeline.bot import Approver, Follower, seen_of
from tests.pipeline.instant import write_instant_suite
from tests.pipeline.outcomes import Expected, RegistryRow, Report, check_run, finished
from tests.pipeline.submissions import SUBMITTER, Submission, prepare, submit_all
from tests.pipeline.supervisor import ServiceSpec, Supervisor
from tests.stack import Stack

ENVIRONMENT = "drill"
APPROVER = "approver-bot"
# The drill's consumers notice a SIGKILLed member within seconds, not faust's default
# minute, so a restarted service gets its partitions back quickly (faust reads these).
FAST_GROUPS = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_specs(
    stack: Stack, tiny: Kit, approval_port: int, replica_ports: Sequence[int]
) -> list[ServiceSpec]:
    root = stack.root
    common = {
        **FAST_GROUPS,
        "CONSUMER_GROUP_PREFIX": f"t{stack.token}",  # groups of its own: kills stay in here
        "APP_DATADIR": str(root / "faust" / "{conf.name}-data"),
        # Read models believe only decisions signed by the drill approval's key.
        "DECISION_PUBLIC_KEYS": ":".join(
            str(root / key) for key in ("keys/signing.key.pub", "test-decisions.pub")
        ),
    }
    replica_env = {
        "REFERENCE_BASE_FOLDER": str(tiny.base),
        "REFERENCE_BASE_ID": tiny.model_ids["main"],
        "REFERENCE_BASE_REVISION": tiny.revisions["main"],
        # Nothing asks the drill's adapters for answers: keep few in the PEFT model, so
        # each load stays cheap (a load walks every resident adapter's modules).
        "REFERENCE_MAX_RESIDENT_LORAS": "4",
    }
    return [
        ServiceSpec("ingest", ("-m", "services.ingest"), common),
        ServiceSpec("validator", ("-m", "services.validator"), common),
        ServiceSpec(
            "gpu_evaluator",
            ("-m", "tests.pipeline.instant"),
            {**common, "EVALUATOR_SUITES_ROOT": str(root / "suites")},
        ),
        ServiceSpec(
            "approval",
            ("-m", "services.approval"),
            {
                **common,
                "APPROVAL_HTTP_PORT": str(approval_port),
                "APPROVAL_SIGNING_KEY": str(root / "keys" / "signing.key"),
            },
        ),
        ServiceSpec(
            "activator",
            ("-m", "services.activator"),
            {
                **common,
                "ACTIVATOR_HTTP_PORT": str(stack.activator_port),
                "ACTIVATOR_ROUTING_DIR": str(root / "routing"),
                "ACTIVATOR_ANALYSIS_INTERVAL_S": "2",  # reloads a restarted replica soon
                # Loads retry for ~30 s: longer than a replica takes to come back.
                "ACTIVATOR_LOAD_ATTEMPTS": "16",
                "ACTIVATOR_LOAD_BACKOFF_S": "0.2",
                "ACTIVATOR_LOAD_BACKOFF_MAX_S": "2",
            },
        ),
        *(
            ServiceSpec(
                f"replica{i}", ("-m", "services.reference_server", "--port", str(port)), replica_env
            )
            for i, port in enumerate(replica_ports, start=1)
        ),
    ]


async def until_done(pipeline: Pipeline, count: float, timeout_s: float = 180) -> None:
    """Until at least `count` promotions have finished (a drill strikes part-way through)."""

    async def enough() -> bool:
        return pipeline.done() >= count

    message = f"{count:.0f} promotions finished"
    await eventually_async(enough, timeout=timeout_s, interval=0.05, message=message)


def warm_producer(bootstrap_servers: Kafka) -> Producer:
    """An idempotent producer past its start (producer id acquired, metadata fetched)."""
    producer = make_producer(bootstrap_servers)
    producer.list_topics(timeout=30)
    producer.flush(30)
    return producer


def wait_http(url: str, supervisor: Supervisor, timeout_s: float = 180) -> None:
    try:
        processes.wait_http(url, timeout_s=timeout_s)
    except TimeoutError:
        logs = "\n".join(supervisor.stack.log_of(n) for n in supervisor.specs)
        raise AssertionError(f"{url} never answered\n{logs}") from None


@dataclass
class Pipeline:
    stack: Stack
    tiny: Kit
    supervisor: Supervisor
    follower: Follower
    approver: Approver
    approval_url: str
    expected: list[Expected] = field(default_factory=list)
    submitted_at: float = 0.0
    producer: Producer | None = None  # the training cluster's, reused across promote()s

    @classmethod
    async def start(
        cls, infra: Infra, root: Path, *, replication_factor: int = 1, min_insync_replicas: int = 1
    ) -> Pipeline:
        tiny = kit()
        stack = Stack(
            infra,
            root,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
        await stack.create()
        base_id, base_revision = stack.register_kit_base(tiny)
        stack.adapterctl(
            "env", "set", ENVIRONMENT, "--base", f"{base_id}@{base_revision}",
            "--canary-steps", "100", "--required-approvals", "1",
        )  # fmt: skip
        # The submitter is one of the stack's trainers (made with it); the approver is new.
        tokens = {name: stack.token_of(name, role) for name, role in
                  ((SUBMITTER, "trainer"), (APPROVER, "approver"))}  # fmt: skip
        write_instant_suite(root / "suites")
        (root / "faust").mkdir(exist_ok=True)
        approval_port, replica_ports = free_port(), [free_port(), free_port()]
        replicas = [f"http://127.0.0.1:{p}" for p in replica_ports]
        supervisor = Supervisor(stack, service_specs(stack, tiny, approval_port, replica_ports))
        supervisor.start()
        approval_url = f"http://127.0.0.1:{approval_port}"
        approver = Approver(approval_url, tokens[APPROVER])
        follower = Follower(infra.kafka, stack.lifecycle_topic, approver)
        pipeline = cls(stack, tiny, supervisor, follower, approver, approval_url)
        try:
            activator_url = stack.env()["ACTIVATOR_URL"]
            health = [f"{approval_url}/healthz", f"{activator_url}/healthz"]
            for url in [*health, *(f"{r}/health" for r in replicas)]:
                await asyncio.to_thread(wait_http, url, supervisor)
            # The activator's own setting, set through its API as the stack's admin.
            await asyncio.to_thread(stack.adapterctl, "env", "replicas", ENVIRONMENT, *replicas)
        except BaseException:
            supervisor.stop()
            raise
        approver.start()
        follower.start()
        return pipeline

    async def promote(
        self, count: int, *, bad_every: int = 25, prefix: str = "a"
    ) -> list[Submission]:
        """Submit `count` adapters at once (named `<prefix>-0000`...); every `bad_every`-th
        is spoiled and must be refused."""
        submissions = prepare(
            template=self.tiny.good,
            incoming=self.stack.incoming,
            outside=self.stack.root / "elsewhere",
            count=count,
            bad_every=bad_every,
            base=BaseModelRef(
                model_id=self.tiny.model_ids["main"], revision=self.tiny.revisions["main"]
            ),
            base_folder=self.tiny.base,
            environment=ENVIRONMENT,
            prefix=prefix,
        )
        self.expected = [s.expected for s in submissions]
        bootstrap = self.stack.infra.as_principal("ingest")
        if self.producer is None:
            self.producer = await asyncio.to_thread(warm_producer, bootstrap)
        self.submitted_at = time.monotonic()
        await asyncio.to_thread(
            submit_all, bootstrap, self.stack.trained_topic, submissions, self.producer
        )
        return submissions

    def done(self) -> int:
        """How many submitted revisions the log shows at their terminal event."""
        return len(finished(self.expected, self.follower.snapshot()))

    async def wait(self, *, timeout_s: float = 600, stall_s: float = 120) -> float:
        """Until every revision shows its terminal event; the seconds it took. Fails early,
        with the outcome report, when nothing finishes for `stall_s`."""
        deadline = time.monotonic() + timeout_s
        last, moved = -1, time.monotonic()
        while (count := self.done()) < len(self.expected):
            now = time.monotonic()
            if count != last:
                last, moved = count, now
            if now > deadline or now - moved > stall_s:
                report = await self.report()
                raise AssertionError(
                    f"{count}/{len(self.expected)} revisions finished after "
                    f"{now - self.submitted_at:.0f}s (logs: {self.stack.root})\n"
                    + "\n".join(report.problems[:100])
                    + self.bot_summary()
                )
            await asyncio.sleep(0.25)
        return time.monotonic() - self.submitted_at

    def bot_summary(self) -> str:
        failures = "".join(f"\n  {a}: {why}" for a, why in self.approver.failures.items())
        return f"\napprover bot: {dict(self.approver.counts)}{failures}"

    async def registry_rows(self) -> dict[str, RegistryRow]:
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            rows = await conn.fetch(
                "SELECT r.adapter, r.revision, r.tracks::text AS tracks, p.active"
                " FROM revisions r LEFT JOIN pointers p"
                " ON p.adapter = r.adapter AND p.environment = $1",
                ENVIRONMENT,
            )
        finally:
            await conn.close()
        wanted = {e.adapter: e.revision for e in self.expected}
        found = {}
        for row in rows:
            if wanted.get(row["adapter"]) == row["revision"]:
                tracks = json.loads(row["tracks"])
                found[row["adapter"]] = RegistryRow(
                    tracks.get(""), tracks.get(ENVIRONMENT), row["active"]
                )
        return found

    async def report(self) -> Report:
        """The outcome check, from the whole topic read again from its start and the registry."""
        from shared.codec import Codec

        codec = Codec.from_env()
        records = await asyncio.to_thread(self.stack.records)
        seen = [seen_of(codec, r.value or b"") for r in records]
        return check_run(self.expected, seen, await self.registry_rows())

    def audit(self) -> str:
        """`adapterctl audit verify`, decision signatures included; its output."""
        public_key = self.stack.root / "keys" / "signing.key.pub"
        result = self.stack.adapterctl("audit", "verify", "--public-key", str(public_key))
        self.stack.both_verifiers_agree(public_key)  # the second verifier says the same
        return result.stdout

    async def stop(self) -> None:
        self.approver.stop()
        self.follower.stopping.set()
        await asyncio.to_thread(self.supervisor.stop)
        self.approver.join(timeout=5)
        self.follower.join(timeout=5)
