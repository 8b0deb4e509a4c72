"""The vLLM serving target speaks vLLM's runtime LoRA API as vLLM answers it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from services.activator.adapters import VllmTarget
from services.activator.ports import TargetError

Route = Callable[[httpx.Request], httpx.Response]


def target(route: Route) -> VllmTarget:
    client = httpx.AsyncClient(transport=httpx.MockTransport(route))
    return VllmTarget("http://vllm:8000/", client)


async def test_loading_posts_the_name_and_path_vllm_expects() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, text="Success: LoRA adapter 'chat@1' added successfully.")

    await target(route).load("chat@1", "/store/chat/1")

    assert seen == [
        ("/v1/load_lora_adapter", {"lora_name": "chat@1", "lora_path": "/store/chat/1"})
    ]


async def test_a_name_vllm_has_loaded_already_is_not_an_error() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"message": "The lora adapter 'chat@1' has already been loaded."}
        )

    await target(route).load("chat@1", "/store")


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (404, False), (400, False)]
)
async def test_a_failed_load_says_whether_trying_again_may_help(
    status: int, retryable: bool
) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="nope")

    with pytest.raises(TargetError) as failed:
        await target(route).load("chat@1", "/store")

    assert failed.value.retryable is retryable
    assert f"answered {status}: nope" in str(failed.value)


async def test_an_unreachable_replica_is_a_retryable_error() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TargetError) as failed:
        await target(route).models()

    assert failed.value.retryable and failed.value.url == "http://vllm:8000"


async def test_models_lists_every_served_name_with_its_root() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        data = [
            {"id": "meta-llama/Llama-3.1-8B", "object": "model", "root": "/models/llama"},
            {"id": "chat@1", "object": "model", "root": "/store/chat/1", "parent": "meta-llama"},
        ]
        return httpx.Response(200, json={"object": "list", "data": data})

    assert await target(route).models() == {
        "meta-llama/Llama-3.1-8B": "/models/llama",
        "chat@1": "/store/chat/1",
    }


async def test_plain_vllm_has_no_info_and_takes_no_routing() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    vllm = target(route)

    assert await vllm.describe() is None
    assert await vllm.push_routing({"generation": 1}) is False
    await vllm.unload("chat@1")  # not loaded: nothing to do
