"""Our vLLM client (`VllmTarget`) against vLLM's own HTTP layer: every answer the client
interprets (success, "already been loaded", not found, no such route, no key) comes from
vLLM's code at the pinned version, not from a recording of it.

A few tests also read vLLM's raw answer: they pin the wire facts the client is written
against (`ALREADY_LOADED`, `ROUTE_ABSENT`), so an upgrade that changes them fails here, by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.activator.adapters import ALREADY_LOADED, ROUTE_ABSENT, VllmTarget, key_file
from services.activator.ports import BaseCard, TargetError
from tests.conformance.conftest import API_KEY, MAX_LORA_RANK, MAX_MODEL_LEN, Replica

pytestmark = pytest.mark.conformance

Names = Callable[[str], str]
Folders = Callable[..., Path]


def target_of(replica: Replica, client: httpx.AsyncClient, *, key: str | None = None) -> VllmTarget:
    return VllmTarget(replica.url, client, api_key=key)


async def card_of(replica: Replica, client: httpx.AsyncClient, name: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {replica.api_key}"} if replica.api_key else {}
    listing = (await client.get(f"{replica.url}/v1/models", headers=headers)).json()
    return next(card for card in listing["data"] if card["id"] == name)


async def test_a_loaded_adapter_is_listed_by_name_with_its_folder_and_the_base_as_parent(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    replica, name, folder = replicas["open"], unique_name("chat"), adapters()
    target = target_of(replica, client)

    await target.load(name, str(folder))

    assert (await target.models())[name] == str(folder)
    card = await card_of(replica, client, name)
    assert card["parent"] == replica.base_id  # what `base()` tells the base card apart by
    assert card["max_model_len"] is None


async def test_the_base_card_names_the_served_model_its_folder_and_its_context(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    replica = replicas["open"]
    target = target_of(replica, client)
    await target.load(unique_name("chat"), str(adapters()))  # a LoRA card is never the base

    base = await target.base()

    assert base == BaseCard(
        id=replica.base_id, root=str(replica.base_folder), max_model_len=MAX_MODEL_LEN
    )
    assert (await target.models())[replica.base_id] == str(replica.base_folder)


async def test_an_unloaded_adapter_is_neither_listed_nor_served(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    target, name = target_of(replicas["open"], client), unique_name("chat")
    await target.load(name, str(adapters()))

    await target.unload(name)

    assert name not in await target.models()
    with pytest.raises(TargetError, match="does not exist"):
        await target.probe(name)


async def test_loading_a_name_already_loaded_succeeds_on_vllms_already_loaded_answer(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    replica, name, folder = replicas["open"], unique_name("chat"), adapters()
    target = target_of(replica, client)
    await target.load(name, str(folder))

    await target.load(name, str(folder))

    assert (await target.models())[name] == str(folder)
    again = await client.post(
        f"{replica.url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(folder)}
    )
    assert again.status_code == 400
    assert again.json()["error"]["message"] == (
        f"The lora adapter '{name}' has already been loaded. If you want to load the adapter "
        "in place, set 'load_inplace' to True."
    )
    assert ALREADY_LOADED in again.text


async def test_unloading_a_name_that_is_not_loaded_is_no_error(
    replicas: dict[str, Replica], client: httpx.AsyncClient, unique_name: Names
) -> None:
    replica, name = replicas["open"], unique_name("chat")

    await target_of(replica, client).unload(name)

    answer = await client.post(f"{replica.url}/v1/unload_lora_adapter", json={"lora_name": name})
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "message": f"The lora adapter '{name}' cannot be found.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    assert answer.json() != ROUTE_ABSENT  # so the client does not take it for routes off


async def test_a_folder_the_replica_cannot_read_fails_the_load_at_once_and_says_where(
    replicas: dict[str, Replica], client: httpx.AsyncClient, tmp_path: Path, unique_name: Names
) -> None:
    target, name, missing = target_of(replicas["open"], client), unique_name("chat"), tmp_path / "x"

    with pytest.raises(TargetError) as raised:
        await target.load(name, str(missing))

    assert not raised.value.retryable and not raised.value.unreachable
    assert "answered 404" in str(raised.value)
    assert f"Loading lora {name} failed: No adapter found for {missing}" in str(raised.value)
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in str(raised.value)


async def test_an_adapter_above_the_replicas_max_lora_rank_is_refused_with_vllms_reason(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    """The engine core's ValueError reaches the API server as a plain Exception (its type
    does not cross the process boundary), which vLLM's `create_error_response` answers with
    500 InternalServerError: the one refusal of a load that is not a 4xx."""
    target, rank = target_of(replicas["open"], client), 4 * MAX_LORA_RANK

    with pytest.raises(TargetError) as raised:
        await target.load(unique_name("chat"), str(adapters(rank=rank)))

    assert "answered 500" in str(raised.value) and "InternalServerError" in str(raised.value)
    assert (
        f"Call to add_lora method failed: LoRA rank {rank} is greater than max_lora_rank "
        f"{MAX_LORA_RANK}."
    ) in str(raised.value)


async def test_after_vllm_refuses_a_load_the_next_call_is_still_answered(
    replicas: dict[str, Replica], adapters: Folders, tmp_path: Path, unique_name: Names
) -> None:
    """vLLM raises an engine's refusal out of its route (vllm/entrypoints/openai/models/
    serving.py) to the app's `Exception` handler; Starlette's ServerErrorMiddleware sends that
    handler's answer and re-raises, and uvicorn then closes the connection (about half the
    time before the client's next request on it is read). A replica that answered is not
    unreachable: the client must not report the next call as an outage."""
    name, folder = unique_name("chat"), adapters()
    for attempt in range(5):
        async with httpx.AsyncClient(timeout=30) as client:  # one pooled connection
            target = target_of(replicas["open"], client)
            with pytest.raises(TargetError, match="No adapter found"):
                await target.load(unique_name("gone"), str(tmp_path / f"missing-{attempt}"))

            await target.load(name, str(folder))  # the same keep-alive connection

            assert name in await target.models()


async def test_a_probe_under_a_loaded_name_is_answered_by_vllms_completions_route(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    replica, name = replicas["open"], unique_name("chat")
    target = target_of(replica, client)
    await target.load(name, str(adapters()))

    assert await target.probe(name) == 200

    answer = await client.post(
        f"{replica.url}/v1/completions", json={"model": name, "prompt": "ping", "max_tokens": 1}
    )
    assert answer.json()["model"] == name  # vLLM served it under the LoRA, not the base
    assert answer.json()["usage"]["completion_tokens"] == 1


async def test_a_probe_under_a_name_vllm_does_not_serve_fails_with_vllms_not_found(
    replicas: dict[str, Replica], client: httpx.AsyncClient, unique_name: Names
) -> None:
    name = unique_name("chat")

    with pytest.raises(TargetError, match=re.escape(f"The model `{name}` does not exist.")):
        await target_of(replicas["open"], client).probe(name)


@pytest.mark.parametrize("key", [None, "not-the-key"], ids=["no key", "wrong key"])
async def test_a_replica_started_with_an_api_key_refuses_us_without_it_and_says_so(
    replicas: dict[str, Replica],
    client: httpx.AsyncClient,
    adapters: Folders,
    unique_name: Names,
    key: str | None,
) -> None:
    replica = replicas["keyed"]
    target = target_of(replica, client, key=key)

    for call in (
        target.models(),
        target.base(),
        target.load(unique_name("chat"), str(adapters())),
        target.unload(unique_name("chat")),
        target.probe(unique_name("chat")),
    ):
        with pytest.raises(TargetError) as raised:
            await call
        assert "401" in str(raised.value)
        assert re.search(r"api[- ]key", str(raised.value), re.IGNORECASE), str(raised.value)
        assert not raised.value.retryable

    refused = await client.get(f"{replica.url}/v1/models")
    assert (refused.status_code, refused.json()) == (401, {"error": "Unauthorized"})


async def test_with_the_replicas_api_key_every_lora_call_goes_through(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders, unique_name: Names
) -> None:
    replica, name, folder = replicas["keyed"], unique_name("chat"), adapters()
    target = target_of(replica, client, key=API_KEY)

    await target.load(name, str(folder))
    await target.load(name, str(folder))
    listed = await target.models()
    status = await target.probe(name)
    base = await target.base()
    await target.unload(name)
    await target.unload(name)

    assert (listed[name], status) == (str(folder), 200)
    assert base is not None and base.id == replica.base_id
    assert name not in await target.models()


async def test_the_key_is_read_from_the_environments_key_file(
    replicas: dict[str, Replica],
    client: httpx.AsyncClient,
    adapters: Folders,
    unique_name: Names,
    tmp_path: Path,
) -> None:
    key_path = tmp_path / "prod.key"
    key_path.write_text(API_KEY + "\n")
    os.chmod(key_path, 0o600)
    target = VllmTarget(replicas["keyed"].url, client, api_key=key_file(tmp_path, "prod"))
    name = unique_name("chat")

    await target.load(name, str(adapters()))

    assert name in await target.models()


async def test_vllms_unguarded_routes_answer_without_the_key(
    replicas: dict[str, Replica], client: httpx.AsyncClient
) -> None:
    """vLLM's AuthenticationMiddleware guards /v1, /v2 and /inference only: `/metrics` (the
    canary analysis's scrape) and `/info` (absent: stock vLLM cannot describe itself) answer."""
    target = target_of(replicas["keyed"], client)

    assert await target.describe() is None
    assert "# TYPE" in await target.metrics()


@pytest.mark.parametrize("call", ["load", "unload"])
async def test_a_replica_without_runtime_lora_updating_is_named_as_such(
    replicas: dict[str, Replica],
    client: httpx.AsyncClient,
    adapters: Folders,
    unique_name: Names,
    call: str,
) -> None:
    replica, name = replicas["frozen"], unique_name("chat")
    target = target_of(replica, client)

    with pytest.raises(TargetError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING") as raised:
        if call == "load":
            await target.load(name, str(adapters()))
        else:
            await target.unload(name)

    assert not raised.value.retryable
    answer = await client.post(f"{replica.url}/v1/{call}_lora_adapter", json={"lora_name": name})
    assert (answer.status_code, answer.json()) == (404, ROUTE_ABSENT)


async def test_a_replica_without_runtime_lora_updating_still_lists_and_proves_its_base(
    replicas: dict[str, Replica], client: httpx.AsyncClient
) -> None:
    replica = replicas["frozen"]
    target = target_of(replica, client)

    assert await target.models() == {replica.base_id: str(replica.base_folder)}
    assert await target.base() == BaseCard(replica.base_id, str(replica.base_folder), 64)


async def test_stock_vllm_takes_no_routing_and_cannot_describe_itself(
    replicas: dict[str, Replica], client: httpx.AsyncClient
) -> None:
    target = target_of(replicas["open"], client)

    assert await target.routes_traffic() is False
    assert await target.push_routing({"environment": "prod", "adapters": {}}) is False
    assert await target.describe() is None
