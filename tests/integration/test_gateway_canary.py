"""Canaries on the serving stack users run: stock-vLLM replicas (the reference server in its
stock mode: no routing, no per-LoRA counters of ours) behind the gateway, clients calling the
logical adapter name with the official `openai` client, and canary analysis reading a real
Prometheus server (Debian's, started by infra/up.sh) that scrapes the gateway. Real Kafka,
PostgreSQL, activator and gateway processes.

A revision canaries 20% -> 50% -> 100% under live traffic; one whose canary errors is rolled
back by analysis; a streamed answer arrives in chunks under the name the client asked for."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from infra.processes import wait_http
from shared.codec import Codec
from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionRolledBack,
    RevisionSuperseded,
)
from shared.modelkit.cache import kit
from shared.registry.store import PostgresRegistry
from tests.conftest import INFRA_ENV, REPO, Infra, _read_env_file
from tests.eventually import eventually_async
from tests.integration.test_activator import (
    Approved,
    Rollouts,
    free_port,
    revision_of,
    wait_healthy,
)
from tests.integration.test_activator_stock_vllm import pinned_base_folder, start_stock_replica
from tests.stack import Stack

# Prometheus is shared by every stack on this machine: the environment's name is the label
# its series are told apart by.
ENV = f"gw-{uuid.uuid4().hex[:8]}"
CLIENT_KEY = "sk-client-" + uuid.uuid4().hex
ADMIN_KEY = "gw-admin-" + uuid.uuid4().hex
QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of Peru?"}
]


@dataclass
class GatewayStack:
    rollouts: Rollouts
    gateway: str
    prometheus: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.gateway}/v1", api_key=CLIENT_KEY, max_retries=0)

    @contextmanager
    def traffic(self, adapter: str, per_second: float = 25) -> Iterator[list[int]]:
        """Requests for the adapter's logical name through the gateway until the block ends."""
        statuses: list[int] = []
        stop = threading.Event()

        def send() -> None:
            client = self.client()
            while not stop.is_set():
                try:
                    client.chat.completions.create(
                        model=adapter,
                        messages=QUESTION,
                        max_tokens=2,
                        extra_headers={"x-request-id": uuid.uuid4().hex},
                    )
                    statuses.append(200)
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
                stop.wait(1 / per_second)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        try:
            yield statuses
        finally:
            stop.set()
            thread.join(timeout=30)

    def scraped_requests(self, lora: str) -> float:
        """What Prometheus holds of the gateway's request counter for `lora`."""
        query = (
            f'sum(inference_model_request_total{{environment="{ENV}",target_model_name="{lora}"}})'
        )
        body = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": query}).json()
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0


def private(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def prometheus_of_infra() -> tuple[str, Path]:
    values = {**(_read_env_file(INFRA_ENV) if INFRA_ENV.exists() else {}), **os.environ}
    url = values.get("PROMETHEUS_URL", "http://127.0.0.1:19090")
    targets = Path(values.get("PROMETHEUS_TARGETS_DIR", REPO / "var" / "prometheus" / "targets"))
    return url, targets


@pytest.fixture(scope="module", name="gw")
async def gateway_stack(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayStack]:
    prometheus, targets = prometheus_of_infra()
    assert httpx.get(f"{prometheus}/-/ready", timeout=5).status_code == 200, (
        f"no Prometheus at {prometheus}: infra/up.sh starts it"
    )
    tiny = kit()
    root = tmp_path_factory.mktemp("gateway")
    stack = Stack(infra, root)
    await stack.create()
    base_id, base_revision = stack.register_kit_base(tiny)
    folder = pinned_base_folder(root, tiny, base_id, base_revision)
    replicas = [
        start_stock_replica(stack, tiny, f"stock{i}", folder, REFERENCE_FAULTS_ENABLED="1")
        for i in (1, 2)
    ]
    keys = root / "gateway-keys"
    keys.mkdir(mode=0o700)
    private(keys / f"{ENV}.key", ADMIN_KEY)
    clients = private(root / "clients", "sha256:" + hashlib.sha256(CLIENT_KEY.encode()).hexdigest())
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    stack.processes["gateway"] = stack.command(
        "gateway",
        ("-m", "services.gateway"),
        GATEWAY_ENVIRONMENT=ENV,
        GATEWAY_REPLICAS=",".join(replicas),
        GATEWAY_BASE_MODEL=base_id,
        GATEWAY_CLIENT_KEYS_FILE=str(clients),
        GATEWAY_ADMIN_KEY_FILE=str(keys / f"{ENV}.key"),
        GATEWAY_ROUTING_URL=f"http://127.0.0.1:{stack.activator_port}/routing/{ENV}",
        GATEWAY_ROUTING_POLL_S="1",
        GATEWAY_PORT=str(gateway_port),
    ).start()
    targets.mkdir(parents=True, exist_ok=True)
    target_file = targets / f"{ENV}.json"
    group = [{"targets": [f"127.0.0.1:{gateway_port}"], "labels": {"environment": ENV}}]
    target_file.write_text(json.dumps(group))
    stack.start(
        "activator",
        ACTIVATOR_ANALYSIS_INTERVAL_S="0.5",
        ACTIVATOR_LOAD_ATTEMPTS="3",
        ACTIVATOR_LOAD_BACKOFF_S="0.1",
        ACTIVATOR_METRICS_SOURCE="prometheus",
        ACTIVATOR_PROMETHEUS_URL=prometheus,
        ACTIVATOR_GATEWAY_KEYS_DIR=str(keys),
    )
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{stack.activator_port}/healthz")
    await asyncio.to_thread(wait_http, f"{gateway}/healthz")
    stack.adapterctl(
        "env", "set", ENV, "--base", f"{base_id}@{base_revision}",
        "--canary-steps", "20,50,100", "--gateway", gateway,
    )  # fmt: skip
    stack.adapterctl("env", "replicas", ENV, *replicas)
    # Short steps and small samples keep the test fast; the latency slack absorbs a busy CPU.
    stack.adapterctl(
        "env", "analysis", ENV,
        "--step-interval-s", "2", "--min-samples", "8", "--min-p95-delta-ms", "2000",
    )  # fmt: skip
    wait_healthy(stack, replicas)
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env())
    try:
        activator = f"http://127.0.0.1:{stack.activator_port}"
        rollouts = Rollouts(stack, registry, tiny, replicas, activator)
        yield GatewayStack(rollouts, gateway, prometheus)
    finally:
        target_file.unlink(missing_ok=True)
        await registry.close()
        stack.stop()


async def test_a_canary_behind_the_gateway_expands_by_prometheus_analysis_and_activates(
    gw: GatewayStack,
) -> None:
    rollouts = gw.rollouts
    adapter = f"summarizer-{uuid.uuid4().hex[:8]}"
    first = await rollouts.approve(adapter, "good", environment=ENV)
    rollouts.wait(adapter, (RevisionActivated, first.revision))

    with gw.traffic(adapter) as statuses:
        second = await rollouts.approve(adapter, "json", environment=ENV)
        events = rollouts.wait(
            adapter,
            (CanaryStarted, second.revision),
            (CanaryExpanded, second.revision),
            (RevisionSuperseded, first.revision),
            (RevisionActivated, second.revision),
            timeout_s=180,
        )
    started = next(e for e in events if isinstance(e, CanaryStarted))
    expanded = next(e for e in events if isinstance(e, CanaryExpanded))
    activated = [e for e in events if isinstance(e, RevisionActivated)][-1]
    assert (started.traffic_percent, expanded.traffic_percent) == (20, 50)
    assert int(expanded.evidence["canary.requests"]) >= 8
    assert activated.evidence["decision"] == "promote"
    assert statuses and set(statuses) == {200}  # every request by the logical name was served

    # The samples the analysis judged are the gateway's, as Prometheus scraped them: stock
    # replicas export no per-revision counters of ours.
    assert gw.scraped_requests(second.lora) >= 8
    routing = httpx.get(f"{gw.gateway}/v1/routing", timeout=10).json()
    assert routing["adapters"][adapter]["weights"] == {second.lora: 100}
    answer = gw.client().chat.completions.with_raw_response.create(
        model=adapter, messages=QUESTION, max_tokens=2
    )
    assert answer.headers["x-served-model"] == second.lora
    assert answer.parse().model == adapter  # the client sees the name it asked for


async def test_a_canary_whose_requests_fail_behind_the_gateway_is_rolled_back(
    gw: GatewayStack,
) -> None:
    rollouts = gw.rollouts
    adapter = f"classifier-{uuid.uuid4().hex[:8]}"
    stable = await rollouts.approve(adapter, "good", environment=ENV)
    rollouts.wait(adapter, (RevisionActivated, stable.revision))
    failing = Approved(adapter, revision_of(rollouts.tiny.adapter("shuffled")), "").lora

    with (
        rollouts.faults(rollouts.replicas[0], requests=[failing]),
        rollouts.faults(rollouts.replicas[1], requests=[failing]),
        gw.traffic(adapter) as statuses,
    ):
        candidate = await rollouts.approve(adapter, "shuffled", environment=ENV)
        events = rollouts.wait(adapter, (RevisionRolledBack, candidate.revision), timeout_s=180)
    rolled_back = next(e for e in events if isinstance(e, RevisionRolledBack))
    assert rolled_back.restored_revision == stable.revision
    assert rolled_back.evidence["decision"] == "roll_back"
    assert float(rolled_back.evidence["canary.error_rate"]) > 0.05
    assert 500 in statuses  # the canary's errors reached clients, and only its share did
    assert not any(
        isinstance(e, RevisionActivated) and e.envelope.revision == candidate.revision
        for e in events
    )
    routing = httpx.get(f"{gw.gateway}/v1/routing", timeout=10).json()
    assert routing["adapters"][adapter]["canary"] is None


async def test_a_client_streaming_by_the_logical_name_receives_the_answer_in_chunks(
    gw: GatewayStack,
) -> None:
    rollouts = gw.rollouts
    adapter = f"chat-{uuid.uuid4().hex[:8]}"
    served = await rollouts.approve(adapter, "json", environment=ENV)  # answers in several tokens
    rollouts.wait(adapter, (RevisionActivated, served.revision))

    async def routed() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            document = (await client.get(f"{gw.gateway}/v1/routing")).json()
        return adapter in document.get("adapters", {})

    await eventually_async(routed, timeout=30, message="the gateway never took the routing")
    stream = gw.client().chat.completions.create(
        model=adapter,
        messages=QUESTION,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 2  # token by token, not one buffered answer
    assert {c.model for c in chunks} == {adapter}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= len(texts)
    whole = gw.client().chat.completions.create(model=adapter, messages=QUESTION, max_tokens=12)
    assert "".join(texts) == whole.choices[0].message.content  # the same answer, in pieces
