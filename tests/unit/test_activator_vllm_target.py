"""The vLLM serving target speaks vLLM's runtime LoRA API as vLLM answers it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.activator.adapters import VllmTarget, key_file
from services.activator.ports import BaseCard, TargetError

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


@pytest.mark.parametrize(
    "dropped",
    [
        lambda r: httpx.ReadError("connection closed", request=r),
        lambda r: httpx.RemoteProtocolError("server disconnected", request=r),
    ],
)
async def test_a_pooled_connection_the_replica_closed_is_tried_once_more(
    dropped: Callable[[httpx.Request], Exception],
) -> None:
    # vLLM answers some refusals through an exception handler, after which uvicorn
    # closes the connection; the next request on the pooled connection fails on read.
    tries: list[str] = []

    def route(request: httpx.Request) -> httpx.Response:
        tries.append(request.url.path)
        if len(tries) == 1:
            raise dropped(request)
        return httpx.Response(200, text="Success")

    await target(route).load("chat@1", "/store")

    assert tries == ["/v1/load_lora_adapter", "/v1/load_lora_adapter"]


async def test_a_connection_dropped_twice_is_an_unreachable_replica() -> None:
    tries: list[str] = []

    def route(request: httpx.Request) -> httpx.Response:
        tries.append(request.url.path)
        raise httpx.ReadError("connection closed", request=request)

    with pytest.raises(TargetError) as failed:
        await target(route).load("chat@1", "/store")

    assert len(tries) == 2 and failed.value.retryable and failed.value.unreachable


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


# Stock vLLM as it is: an API key, runtime LoRA updating off, a base card, a probe


def test_the_environments_key_file_is_read_at_each_call_and_must_be_private(
    tmp_path: Path,
) -> None:
    read = key_file(tmp_path, "prod")
    assert read() is None  # no file: no key sent
    secret = tmp_path / "prod.key"
    secret.write_text("sk-one\n")
    secret.chmod(0o600)
    assert read() == "sk-one"
    secret.write_text("sk-two\n")  # rotated: the next call sends the new key
    assert read() == "sk-two"
    secret.chmod(0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        read()
    assert key_file(None, "prod")() is None
    with pytest.raises(ValueError, match="not a plain name"):
        key_file(tmp_path, "../prod")


async def test_every_call_carries_the_api_key_and_a_refusal_says_where_the_key_goes() -> None:
    seen: list[str | None] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer sk-1":
            return httpx.Response(401, json={"error": "Unauthorized"})
        return httpx.Response(200, json={"object": "list", "data": []})

    client = httpx.AsyncClient(transport=httpx.MockTransport(route))
    assert await VllmTarget("http://vllm:8000", client, api_key="sk-1").models() == {}
    with pytest.raises(TargetError) as refused:
        await VllmTarget("http://vllm:8000", client).models()

    assert seen == ["Bearer sk-1", None]
    assert not refused.value.retryable
    assert "answered 401" in str(refused.value) and "ACTIVATOR_REPLICA_KEYS_DIR" in str(
        refused.value
    )


@pytest.mark.parametrize("path", ["/v1/load_lora_adapter", "/v1/unload_lora_adapter"])
async def test_runtime_lora_updating_off_is_named_with_the_variable_that_turns_it_on(
    path: str,
) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})  # no such route

    vllm = target(route)
    call = vllm.load("chat@1", "/store") if "/load" in path else vllm.unload("chat@1")
    with pytest.raises(TargetError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True") as off:
        await call

    assert f"POST {path} answered 404" in str(off.value) and not off.value.retryable


async def test_unloading_a_name_vllm_does_not_know_is_not_an_error() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        body = {"error": {"message": "The lora adapter 'chat@1' cannot be found.",
                          "type": "NotFoundError", "code": 404}}  # fmt: skip
        return httpx.Response(404, json=body)

    await target(route).unload("chat@1")


async def test_the_base_card_is_the_one_without_a_parent() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        data = [
            {"id": "chat@1", "object": "model", "root": "/store/chat/1", "parent": "llama"},
            {"id": "llama", "object": "model", "root": "/models/llama/abc", "max_model_len": 8192},
        ]
        return httpx.Response(200, json={"object": "list", "data": data})

    assert await target(route).base() == BaseCard("llama", "/models/llama/abc", 8192)


async def test_a_probe_asks_for_one_token_and_a_404_means_the_name_is_not_served() -> None:
    asked: list[dict[str, object]] = []

    def route(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        if body["model"] == "chat@1":
            return httpx.Response(500, json={"error": {"message": "injected"}})
        body = {"error": {"message": f"The model `{body['model']}` does not exist."}}
        return httpx.Response(404, json=body)

    vllm = target(route)
    assert await vllm.probe("chat@1") == 500  # an answer from the model: it is served
    with pytest.raises(TargetError, match="does not exist"):
        await vllm.probe("chat@2")
    assert asked[0] == {"model": "chat@1", "prompt": "ping", "max_tokens": 1}


async def test_a_replica_takes_routing_only_if_it_has_a_routing_endpoint() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/routing":
            return httpx.Response(200, json={"generation": 0, "adapters": {}})
        return httpx.Response(404, json={"detail": "Not Found"})

    assert await target(route).routes_traffic() is True
    stock = target(lambda request: httpx.Response(404, json={"detail": "Not Found"}))
    assert await stock.routes_traffic() is False
