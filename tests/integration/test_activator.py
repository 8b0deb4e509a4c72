"""Rollouts through real Kafka and PostgreSQL, the activator as its own process, and two
reference-server replicas (the kit's tiny base with real PEFT adapters) on loopback ports:
canary, expansion and activation by analysis, and an automatic rollback on errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra import processes
from infra.processes import wait_http
from shared.artifacts import LocalArtifactStore
from shared.codec import Codec
from shared.events import (
    BaseModelRef,
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.hf_folder import chat_template_hash, tokenizer_hash
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.modelkit.cache import Kit, kit
from shared.modelkit.facts import ask_capital
from shared.registry.store import PostgresRegistry, Step
from tests.conftest import Infra
from tests.eventually import eventually_async
from tests.factories import lifecycle
from tests.stack import Stack

ENV = "staging"
APPROVER, OPERATOR = "approver-bob", "op-carol"


def kit_files(folder: Path) -> list[tuple[Path, FileEntry]]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        entry = FileEntry(
            path=path.relative_to(folder).as_posix(),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )
        found.append((path, entry))
    return found


def revision_of(folder: Path) -> str:
    return revision_digest(entry for _, entry in kit_files(folder))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Approved:
    adapter: str
    revision: str
    event_id: str
    events: tuple[Any, ...] = field(default=(), compare=False)  # registered ... approved

    @property
    def lora(self) -> str:
        return f"{self.adapter}@{self.revision.removeprefix('sha256:')[:16]}"


@dataclass
class Rollouts:
    stack: Stack
    registry: PostgresRegistry
    tiny: Kit
    replicas: list[str]
    activator_url: str
    store: LocalArtifactStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = LocalArtifactStore(self.stack.artifacts)

    async def approve(
        self,
        adapter: str,
        kind: str,
        *,
        tokenizer_from: Path | None = None,
        commit: bool = True,
        environment: str = ENV,
    ) -> Approved:
        """The kit's `kind` adapter stored, registered, validated, evaluated and approved for
        `environment` (the events left to the caller to commit when not `commit`)."""
        files = []
        for path, entry in kit_files(self.tiny.adapter(kind)):
            self.store.put_stream(io.BytesIO(path.read_bytes()), max_bytes=1 << 26)
            files.append(entry)
        revision = revision_digest(files)
        base = BaseModelRef(
            model_id=self.tiny.model_ids["main"], revision=self.tiny.revisions["main"]
        )
        manifest = Manifest(
            adapter=adapter,
            revision=revision,
            files=tuple(files),
            base_model_id=base.model_id,
            base_model_revision=base.revision,
            tokenizer_revision="tok-1",
            tokenizer_hash=tokenizer_hash(tokenizer_from or self.tiny.base),
            chat_template_hash=chat_template_hash(self.tiny.base),
            quantization_profile="bf16",
            target_environments=(environment,),
            submitter="trainer-alice",
            trained_event_id=str(uuid.uuid4()),
            source_uri=f"file:///incoming/{adapter}",
        )
        digest = self.store.put_manifest(manifest)
        approved = lifecycle(
            RevisionApproved,
            adapter,
            revision,
            environment,
            manifest_digest=digest,
            approvers=[APPROVER],
        )
        events = [
            lifecycle(
                RevisionRegistered,
                adapter,
                revision,
                manifest_digest=digest,
                base_model=base,
                tokenizer_hash=manifest.tokenizer_hash,
                chat_template_hash=manifest.chat_template_hash,
                submitter="trainer-alice",
            ),
            lifecycle(RevisionValidated, adapter, revision),
            lifecycle(RevisionEvaluated, adapter, revision, environment),
            approved,
        ]
        if commit:
            await self.registry.commit([Step(e) for e in events])
        return Approved(adapter, revision, approved.envelope.event_id, tuple(events))

    async def outcome(self, cause_id: str, timeout_s: float = 60) -> Any:
        """The activator's answer to `cause_id`, read from its API as adapterctl reads it."""

        async def row() -> Any:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(f"{self.activator_url}/outcomes/{cause_id}")
            assert response.status_code in (200, 404), response.text
            return response.json() if response.status_code == 200 else None

        message = f"an outcome for {cause_id}:\n{self.stack.log_of('activator')}"
        return await eventually_async(row, timeout=timeout_s, message=message)

    def wait(self, adapter: str, *wanted: tuple[type, str], timeout_s: float = 90) -> list[Any]:
        def done(events: list[Any]) -> bool:
            seen = {(type(e), e.envelope.revision) for e in events}
            return all(w in seen for w in wanted)

        return self.stack.wait_for(done, adapter=adapter, timeout_s=timeout_s)

    def ask(
        self, url: str, model: str, country: str, request_id: str | None = None
    ) -> tuple[int, str, str]:
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": model,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": ask_capital(country)}],
            },
            headers={"x-request-id": request_id or uuid.uuid4().hex},
            timeout=30,
        )
        if response.status_code != 200:
            return response.status_code, "", ""
        body = response.json()
        return 200, body["model"], body["choices"][0]["message"]["content"]

    def answers(self, adapter: str) -> list[list[str]]:
        """Each replica's answers to every fact question, asked by the adapter's name."""
        return [
            [self.ask(u, adapter, f.country)[2] for f in self.tiny.facts] for u in self.replicas
        ]

    def routing(self, url: str) -> dict[str, Any]:
        return dict(httpx.get(f"{url}/v1/routing", timeout=10).json())

    def models(self, url: str) -> set[str]:
        return {m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}

    @contextmanager
    def faults(self, url: str, **rules: Any) -> Iterator[None]:
        httpx.post(f"{url}/admin/faults", json=rules, timeout=10).raise_for_status()
        try:
            yield
        finally:
            httpx.post(f"{url}/admin/faults", json={}, timeout=10).raise_for_status()

    @contextmanager
    def traffic(self, adapter: str, per_second: float = 20) -> Iterator[list[int]]:
        """Requests for the adapter by name, spread over the replicas, until the block ends."""
        statuses: list[int] = []
        stop = threading.Event()

        def send() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    for url in self.replicas:
                        response = client.post(
                            f"{url}/v1/chat/completions",
                            json={
                                "model": adapter,
                                "max_tokens": 2,
                                "messages": [{"role": "user", "content": ask_capital("peru")}],
                            },
                            headers={"x-request-id": uuid.uuid4().hex},
                        )
                        statuses.append(response.status_code)
                    stop.wait(len(self.replicas) / per_second)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        try:
            yield statuses
        finally:
            stop.set()
            thread.join(timeout=30)


def start_replica(stack: Stack, tiny: Kit, name: str, port: int | None = None) -> str:
    """A reference replica (faults enabled) as `name`; on `port` to start one again."""
    port = port or free_port()
    stack.processes[name] = stack.command(
        name,
        ("-m", "services.reference_server", "--port", str(port)),
        REFERENCE_BASE_FOLDER=str(tiny.base),
        REFERENCE_BASE_ID=tiny.model_ids["main"],
        REFERENCE_BASE_REVISION=tiny.revisions["main"],
        REFERENCE_FAULTS_ENABLED="1",
    ).start()
    return f"http://127.0.0.1:{port}"


def wait_healthy(stack: Stack, urls: Sequence[str], timeout_s: float = 120) -> None:
    for url in urls:  # started together: the first wait covers most of the others'
        try:
            processes.wait_http(f"{url}/health", timeout_s=timeout_s)
        except TimeoutError as exc:
            logs = "\n".join(stack.log_of(n) for n in stack.processes)
            raise AssertionError(f"replicas not up: {exc}\n{logs}") from None


@pytest.fixture(scope="module", name="rollouts")
async def rollouts_stack(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rollouts]:
    async with rollouts_on(infra, tmp_path_factory.mktemp("activator")) as rollouts:
        yield rollouts


@asynccontextmanager
async def rollouts_on(infra: Infra, root: Path, **activator: str) -> AsyncIterator[Rollouts]:
    """A stack with two replicas and an activator (`activator`: more of its settings)."""
    tiny = kit()
    stack = Stack(infra, root)
    await stack.create()
    base_id, base_revision = stack.register_kit_base(tiny)
    stack.adapterctl(
        "env",
        "set",
        ENV,
        "--base",
        f"{base_id}@{base_revision}",
        "--canary-steps",
        "20,50,100",
        "--separate-approver-and-operator",
    )
    replicas = [start_replica(stack, tiny, f"replica{i}") for i in (1, 2)]
    stack.start(  # its HTTP API on the stack's port, where the stack's adapterctl asks
        "activator",
        ACTIVATOR_ANALYSIS_INTERVAL_S="0.5",
        ACTIVATOR_ROUTING_DIR=str(stack.root / "routing"),
        ACTIVATOR_LOAD_ATTEMPTS="3",
        ACTIVATOR_LOAD_BACKOFF_S="0.1",
        **activator,
    )
    # The activator's own settings, set through its API as the stack's admin once it answers,
    # so the rollouts below find the replicas and the settings in place.
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{stack.activator_port}/healthz")
    stack.adapterctl("env", "replicas", ENV, *replicas)
    # Short steps and small samples keep the test fast; the latency slack absorbs a busy CPU.
    stack.adapterctl(
        "env",
        "analysis",
        ENV,
        "--step-interval-s",
        "1",
        "--min-samples",
        "8",
        "--min-p95-delta-ms",
        "2000",
    )
    wait_healthy(stack, replicas)
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env())
    try:
        activator_url = f"http://127.0.0.1:{stack.activator_port}"
        yield Rollouts(stack, registry, tiny, replicas, activator_url)
    finally:
        await registry.close()
        stack.stop()


async def test_an_approved_revision_goes_canary_then_expanded_then_active_by_analysis(
    rollouts: Rollouts,
) -> None:
    adapter = f"summarizer-{uuid.uuid4().hex[:8]}"
    first = await rollouts.approve(adapter, "good")
    rollouts.wait(adapter, (RevisionActivated, first.revision))  # nothing served: straight in

    with rollouts.traffic(adapter) as statuses:
        second = await rollouts.approve(adapter, "json")
        events = rollouts.wait(
            adapter,
            (CanaryStarted, second.revision),
            (CanaryExpanded, second.revision),
            (RevisionSuperseded, first.revision),
            (RevisionActivated, second.revision),
        )
    started = next(e for e in events if isinstance(e, CanaryStarted))
    expanded = next(e for e in events if isinstance(e, CanaryExpanded))
    activated = [e for e in events if isinstance(e, RevisionActivated)][-1]
    assert (started.traffic_percent, started.stable_revision) == (20, first.revision)
    assert expanded.traffic_percent == 50 and expanded.evidence["decision"] == "expand"
    assert int(expanded.evidence["canary.requests"]) >= 8
    assert activated.evidence["decision"] == "promote"
    assert activated.previous_revision == first.revision
    assert statuses and set(statuses) == {200}  # every request was served throughout

    for url in rollouts.replicas:
        route = rollouts.routing(url)["adapters"][adapter]
        assert (route["active"], route["canary"]) == (second.lora, None)
        assert {first.lora, second.lora} <= rollouts.models(url)  # the target stays warm
    exported = json.loads((rollouts.stack.root / "routing" / f"{ENV}.json").read_text())
    served = httpx.get(f"{rollouts.activator_url}/routing/{ENV}", timeout=10).json()
    for document in (exported, served):
        route = document["adapters"][adapter]
        assert route["weights"] == {second.lora: 100}
        assert route["rollback_target"]["revision"] == first.revision


async def test_a_canary_whose_requests_fail_is_rolled_back_automatically(
    rollouts: Rollouts,
) -> None:
    adapter = f"classifier-{uuid.uuid4().hex[:8]}"
    stable = await rollouts.approve(adapter, "good")
    rollouts.wait(adapter, (RevisionActivated, stable.revision))
    failing = Approved(adapter, revision_of(rollouts.tiny.adapter("shuffled")), "").lora

    with (
        rollouts.faults(rollouts.replicas[0], requests=[failing]),
        rollouts.faults(rollouts.replicas[1], requests=[failing]),
        rollouts.traffic(adapter),
    ):
        candidate = await rollouts.approve(adapter, "shuffled")
        events = rollouts.wait(adapter, (RevisionRolledBack, candidate.revision))
    rolled_back = next(e for e in events if isinstance(e, RevisionRolledBack))
    assert rolled_back.restored_revision == stable.revision
    assert rolled_back.reason.startswith("canary analysis")
    assert rolled_back.evidence["decision"] == "roll_back"
    assert float(rolled_back.evidence["canary.error_rate"]) > 0.05
    assert not any(
        isinstance(e, RevisionActivated) and e.envelope.revision == candidate.revision
        for e in events
    )
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert (pointer.active, pointer.canary) == (stable.revision, None)
    for url in rollouts.replicas:
        assert rollouts.routing(url)["adapters"][adapter]["canary"] is None
        assert failing not in rollouts.models(url)  # a rolled-back revision is unloaded
