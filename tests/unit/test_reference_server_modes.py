"""The reference server can stand in for stock vLLM as operators run it: no `/info` and no
routing, runtime LoRA updating off, an API key. What it answers then is what vLLM answers
(`make conformance` holds the activator to vLLM's own code; this holds the stand-in to it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.reference_server.app import ServerState, create_app
from services.reference_server.engine import Engine
from services.reference_server.settings import ServerSettings
from shared.modelkit.cache import Kit, kit


@pytest.fixture(scope="module")
def tiny() -> Kit:
    return kit()


@pytest.fixture(scope="module")
def engine(tiny: Kit) -> Engine:
    return Engine(tiny.base)


def client(engine: Engine, tiny: Kit, **env: str) -> Iterator[TestClient]:
    settings = ServerSettings.model_validate({"REFERENCE_BASE_FOLDER": str(tiny.base), **env})
    with TestClient(create_app(ServerState(settings, engine))) as http:
        yield http


@pytest.fixture
def stock(engine: Engine, tiny: Kit) -> Iterator[TestClient]:
    yield from client(engine, tiny, REFERENCE_STOCK_VLLM="1")


def test_stock_mode_has_no_info_and_no_routing_but_a_base_card(stock: TestClient) -> None:
    assert stock.get("/info").json() == {"detail": "Not Found"}
    assert stock.post("/v1/routing", json={"generation": 1}).status_code == 404
    [card] = stock.get("/v1/models").json()["data"]
    assert card["parent"] is None and card["max_model_len"] == 64


def test_without_runtime_updating_the_lora_routes_are_absent(engine: Engine, tiny: Kit) -> None:
    for http in client(engine, tiny, REFERENCE_RUNTIME_LORA_UPDATING="0"):
        for path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
            answer = http.post(path, json={"lora_name": "x", "lora_path": "/nowhere"})
            assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Bearer sk-1"}, 200)],
)
def test_with_an_api_key_every_v1_route_wants_it(
    engine: Engine, tiny: Kit, headers: dict[str, Any], status: int
) -> None:
    for http in client(engine, tiny, REFERENCE_API_KEY="sk-1"):
        assert http.get("/v1/models", headers=headers).status_code == status
        assert http.get("/health").status_code == 200  # not under /v1: open, as in vLLM
