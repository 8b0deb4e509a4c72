"""Rollouts onto replicas that offer only what stock vLLM offers, through real Kafka and
PostgreSQL and the activator as its own process: no `/info` and no routing, an API key,
runtime LoRA updating off, another base. Each gap answers before any traffic moves, with the
reason where an operator reads it, and nothing on the audit log claims what did not happen.

The replicas are the reference server in its stock modes; `make conformance` holds the
same client to vLLM's own HTTP layer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.processes import wait_http
from shared.codec import Codec
from shared.events import CanaryStarted, RevisionActivated
from shared.modelkit.cache import Kit, kit
from shared.registry.store import PostgresRegistry
from tests.conftest import Infra
from tests.integration.test_activator import Rollouts, free_port, wait_healthy
from tests.stack import Stack

KEY = "sk-" + uuid.uuid4().hex
# environment -> the stock replica's settings beyond the kit's base
REPLICAS = {
    "keyed": {"REFERENCE_API_KEY": KEY},
    "frozen": {"REFERENCE_RUNTIME_LORA_UPDATING": "0"},
    "elsewhere": {"REFERENCE_BASE_ID": "another-org/another-model"},
}


@dataclass
class StockStack:
    rollouts: Rollouts
    keys: Path
    replica: dict[str, str]  # environment -> its one replica's URL


def pinned_base_folder(root: Path, tiny: Kit, base_id: str, base_revision: str) -> Path:
    """The kit's base as operators serve a pinned base: from a folder named after its revision."""
    folder = root / "models" / base_id / base_revision.removeprefix("sha256:")
    folder.parent.mkdir(parents=True)
    folder.symlink_to(tiny.base, target_is_directory=True)
    return folder


def start_stock_replica(stack: Stack, tiny: Kit, name: str, folder: Path, **extra: str) -> str:
    """The reference server in its stock-vLLM mode as `name`; `extra`: more of its settings."""
    port = free_port()
    settings = {
        "REFERENCE_BASE_FOLDER": str(folder),
        "REFERENCE_BASE_ID": tiny.model_ids["main"],
        "REFERENCE_BASE_REVISION": tiny.revisions["main"],
        "REFERENCE_STOCK_VLLM": "1",
    }
    stack.processes[name] = stack.command(
        name, ("-m", "services.reference_server", "--port", str(port)), **{**settings, **extra}
    ).start()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module", name="stock")
async def stock_stack(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StockStack]:
    tiny = kit()
    root = tmp_path_factory.mktemp("stock")
    stack = Stack(infra, root)
    await stack.create()
    base_id, base_revision = stack.register_kit_base(tiny)
    folder = pinned_base_folder(root, tiny, base_id, base_revision)
    keys = root / "replica-keys"
    keys.mkdir(mode=0o700)
    replica = {
        env: start_stock_replica(stack, tiny, f"stock-{env}", folder, **REPLICAS[env])
        for env in REPLICAS
    }
    stack.start(
        "activator",
        ACTIVATOR_ANALYSIS_INTERVAL_S="0.5",
        ACTIVATOR_ROUTING_DIR=str(root / "routing"),
        ACTIVATOR_LOAD_ATTEMPTS="2",
        ACTIVATOR_LOAD_BACKOFF_S="0.1",
        ACTIVATOR_REPLICA_KEYS_DIR=str(keys),
    )
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{stack.activator_port}/healthz")
    for env, url in replica.items():
        stack.adapterctl("env", "set", env, "--base", f"{base_id}@{base_revision}")
        stack.adapterctl("env", "replicas", env, url)
    wait_healthy(stack, list(replica.values()))
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env())
    try:
        activator = f"http://127.0.0.1:{stack.activator_port}"
        yield StockStack(Rollouts(stack, registry, tiny, [], activator), keys, replica)
    finally:
        await registry.close()
        stack.stop()


def listed(url: str, key: str | None = None) -> set[str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = httpx.get(f"{url}/v1/models", headers=headers, timeout=10).json()["data"]
    return {m["id"] for m in data if m.get("parent")}


async def test_a_replica_behind_an_api_key_is_driven_once_its_key_is_in_place_and_takes_no_canary(
    stock: StockStack,
) -> None:
    rollouts, url = stock.rollouts, stock.replica["keyed"]
    adapter = f"keyed-{uuid.uuid4().hex[:8]}"

    refused = await rollouts.approve(adapter, "good", environment="keyed")
    answer = await rollouts.outcome(refused.event_id)
    assert answer["outcome"] == "failed" and answer["evidence"]["stopped_by"] == "contract"
    assert "answered 401" in answer["detail"] and "ACTIVATOR_REPLICA_KEYS_DIR" in answer["detail"]

    key_file = stock.keys / "keyed.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    first = await rollouts.approve(f"{adapter}-b", "good", environment="keyed")
    rollouts.wait(first.adapter, (RevisionActivated, first.revision))
    assert listed(url, KEY) == {first.lora}

    # A second revision would start a canary: stock vLLM takes no routing, so the share would
    # be recorded and applied nowhere. It stops before the log says anything.
    second = await rollouts.approve(first.adapter, "json", environment="keyed")
    stopped = await rollouts.outcome(second.event_id)
    assert stopped["outcome"] == "failed" and stopped["evidence"]["stopped_by"] == "routing"
    assert f"{url} take no routing" in stopped["detail"]
    events = rollouts.stack.events(first.adapter)
    assert not [e for e in events if isinstance(e, CanaryStarted)]
    pointer = await rollouts.registry.pointer(first.adapter, "keyed")
    assert (pointer.active, pointer.canary) == (first.revision, None)
    assert listed(url, KEY) == {first.lora}  # nothing loaded for a canary that never started


async def test_a_replica_without_runtime_lora_updating_is_named_so(stock: StockStack) -> None:
    rollouts = stock.rollouts
    approved = await rollouts.approve(
        f"frozen-{uuid.uuid4().hex[:8]}", "good", environment="frozen"
    )

    answer = await rollouts.outcome(approved.event_id)

    assert answer["outcome"] == "failed" and answer["evidence"]["stopped_by"] == "load"
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in answer["detail"]
    assert not [
        e for e in rollouts.stack.events(approved.adapter) if isinstance(e, RevisionActivated)
    ]


async def test_a_replica_serving_another_base_is_refused_before_anything_loads(
    stock: StockStack,
) -> None:
    rollouts, url = stock.rollouts, stock.replica["elsewhere"]
    approved = await rollouts.approve(
        f"elsewhere-{uuid.uuid4().hex[:8]}", "good", environment="elsewhere"
    )

    answer = await rollouts.outcome(approved.event_id)

    assert answer["outcome"] == "failed" and answer["evidence"]["stopped_by"] == "contract"
    assert "serves 'another-org/another-model'" in answer["detail"]
    assert "not the environment's base" in answer["detail"]
    assert listed(url) == set()
    assert not [
        e for e in rollouts.stack.events(approved.adapter) if isinstance(e, RevisionActivated)
    ]
