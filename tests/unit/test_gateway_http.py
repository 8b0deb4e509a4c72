"""The gateway over real replicas, driven by the official `openai` client: our reference
server (behind a replica API key, as vLLM's --api-key) and a stub replica whose stream
waits for the test, so "the first chunk arrives before the replica finishes" is shown by
order, never by timing. Everything listens on free loopback ports in this process."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from services.reference_server.app import ServerState
from services.reference_server.app import create_app as create_replica
from services.reference_server.engine import Engine
from services.reference_server.settings import ServerSettings
from shared.modelkit.cache import Kit, kit
from shared.routing import bucket
from tests.eventually import eventually
from tests.openai_servers import (
    ADMIN_KEY,
    CLIENT_KEY,
    Gateway,
    Gateways,
    Served,
    refused_url,
    route,
    routing,
    write_key_files,
)

REPLICA_KEY = "sk-replica"
STABLE, CANARY = "chat@" + "a" * 16, "chat@" + "b" * 16
STORY, BROKEN, ABSENT = "story@" + "c" * 16, "broken@" + "d" * 16, "absent@" + "e" * 16
CUT = "cut@" + "f" * 16  # the stub's stream of it breaks off after its first chunk
PLAIN = "plain@" + "0" * 16  # the stub fails it with a plain-text 500, as a crashed server


@dataclass
class Stub:
    """A replica serving STORY (streamed on request) and failing BROKEN; the stream holds
    after its first chunk until `release` is set."""

    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions", response_model=None)
        async def chat(request: Request) -> Response:
            body = await request.json()
            model = body["model"]
            if model == CUT:
                return StreamingResponse(self.cut_short(), media_type="text/event-stream")
            if model == PLAIN:
                return PlainTextResponse("Internal Server Error", 500)
            if model == BROKEN:
                error = {"message": "engine died", "type": "InternalServerError", "code": 500}
                return JSONResponse({"error": error}, 500)
            if model != STORY:
                error = {"message": f"The model `{model}` does not exist.", "code": 404}
                return JSONResponse({"error": {**error, "type": "NotFoundError"}}, 404)
            if body.get("stream"):
                usage = (body.get("stream_options") or {}).get("include_usage", False)
                return StreamingResponse(self.events(usage), media_type="text/event-stream")
            message = {"role": "assistant", "content": "Once upon"}
            return JSONResponse(
                self.chunk(
                    "chat.completion",
                    choices=[{"index": 0, "message": message, "finish_reason": "stop"}],
                    usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                )
            )

        return app

    @staticmethod
    def chunk(kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": "s-1", "object": kind, "created": 1, "model": STORY, **fields}

    def delta(self, content: str, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
        chunk = self.chunk("chat.completion.chunk", choices=[choice])
        return f"data: {json.dumps(chunk)}\n\n".encode()

    async def cut_short(self) -> AsyncIterator[bytes]:
        yield self.delta("Once")
        raise ConnectionAbortedError("the replica died mid-stream")  # uvicorn drops it

    async def events(self, usage: bool) -> AsyncIterator[bytes]:
        yield self.delta("Once")
        await asyncio.to_thread(self.release.wait, 10)  # a buffering gateway waits too
        yield self.delta(" upon", "stop")
        if usage:
            counts = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
            chunk = self.chunk("chat.completion.chunk", choices=[], usage=counts)
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"
        self.finished.set()


@pytest.fixture(scope="module")
def tiny() -> Kit:
    return kit()


@pytest.fixture(scope="module")
def replica(tiny: Kit) -> Iterator[Served]:
    """A reference replica with the chat adapter's stable and canary revisions loaded."""
    engine = Engine(tiny.base)
    engine.load(STABLE, str(tiny.good))
    engine.load(CANARY, str(tiny.shuffled))
    settings = ServerSettings.model_validate(
        {"REFERENCE_BASE_FOLDER": str(tiny.base), "REFERENCE_API_KEY": REPLICA_KEY}
    )
    with Served(create_replica(ServerState(settings, engine))) as served:
        yield served


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[Stub, Served]]:
    fake = Stub()
    with Served(fake.app()) as served:
        yield fake, served


@pytest.fixture(scope="module")
def gateways(
    tiny: Kit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways over the given replica URLs; all stop when the module ends."""
    keys = write_key_files(tmp_path_factory.mktemp("gateway-keys"), REPLICA_KEY)
    started = Gateways(tiny.model_ids["main"], keys)
    yield started.start
    started.close()


FIRST_STABLE_ID = next(f"s-{i}" for i in range(1000) if bucket(f"s-{i}") >= 20)
CHAT_AT_20 = routing(7, chat=route(STABLE, CANARY, 20, ("acme",)), story=route(STORY))


@pytest.fixture(scope="module")
def gateway(
    gateways: Callable[..., Gateway], replica: Served, stub: tuple[Stub, Served]
) -> Gateway:
    """A gateway over the reference replica and the stub, chat canaried at 20%."""
    front = gateways(replica.url, stub[1].url)
    assert front.push(CHAT_AT_20).json() == {"accepted": True, "generation": 7}
    return front


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def served_model(response: Any) -> str:
    return str(response.headers["x-served-model"])


def test_a_client_calling_the_logical_name_is_answered_by_a_revision_under_that_name(
    gateway: Gateway,
) -> None:
    client = gateway.client()

    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "capital?"}], max_tokens=2
    )
    completion = raw.parse()
    assert completion.model == "chat" and completion.choices[0].message.content is not None
    assert served_model(raw) in {STABLE, CANARY}

    raw_text = client.completions.with_raw_response.create(model="chat", prompt="hi", max_tokens=2)
    assert raw_text.parse().model == "chat" and served_model(raw_text) in {STABLE, CANARY}


def test_the_base_model_passes_through_unchanged(gateway: Gateway, tiny: Kit) -> None:
    base = tiny.model_ids["main"]
    raw = gateway.client().completions.with_raw_response.create(
        model=base, prompt="hi", max_tokens=2
    )
    assert raw.parse().model == base and served_model(raw) == base


def test_the_canary_takes_its_share_of_request_ids_exactly_as_the_hash_says(
    gateway: Gateway,
) -> None:
    client = gateway.client()
    ids = [f"share-{i}" for i in range(150)]

    served = [
        served_model(
            client.completions.with_raw_response.create(
                model="chat", prompt="x", max_tokens=1, extra_headers={"x-request-id": rid}
            )
        )
        for rid in ids
    ]

    assert served == [CANARY if bucket(rid) < 20 else STABLE for rid in ids]
    assert served.count(CANARY) / len(ids) == pytest.approx(0.20, abs=0.08)


def test_a_canary_tenant_always_gets_the_canary(gateway: Gateway) -> None:
    client = gateway.client()
    stable_ids = [f"t-{i}" for i in range(200) if bucket(f"t-{i}") >= 20][:10]

    for rid in stable_ids:
        headers = {"x-request-id": rid, "x-tenant": "acme"}
        raw = client.completions.with_raw_response.create(
            model="chat", prompt="x", max_tokens=1, extra_headers=headers
        )
        assert served_model(raw) == CANARY


def test_a_stream_reaches_the_client_chunk_by_chunk_renamed_with_usage_counted(
    gateway: Gateway, stub: tuple[Stub, Served]
) -> None:
    fake = stub[0]
    fake.release.clear()
    fake.finished.clear()

    stream = gateway.client().chat.completions.create(
        model="story",
        messages=[{"role": "user", "content": "tell"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = iter(stream)
    first = next(chunks)
    replica_done_before_first_chunk = fake.finished.is_set()
    fake.release.set()
    rest = list(chunks)

    assert not replica_done_before_first_chunk
    assert first.model == "story" and first.choices[0].delta.content == "Once"
    assert [c.model for c in rest] == ["story", "story"]
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens == 2
    assert fake.finished.is_set()
    samples = gateway.metrics()
    story = labels(model_name="story", target_model_name=STORY)
    assert samples[("inference_model_time_to_first_token_seconds_count", story)] >= 1
    assert samples[("inference_model_output_tokens_sum", story)] >= 2


def test_the_reference_replicas_stream_reaches_the_client_under_the_logical_name(
    gateway: Gateway,
) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "user", "content": "capital?"}],
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-request-id": FIRST_STABLE_ID},
    )
    chunks = list(raw.parse())

    assert served_model(raw) == STABLE
    assert chunks and {c.model for c in chunks} == {"chat"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_a_client_leaving_mid_stream_hands_the_replica_back(
    gateways: Callable[..., Gateway], stub: tuple[Stub, Served]
) -> None:
    fake = stub[0]
    fake.release.clear()
    front = gateways(stub[1].url)
    front.push(routing(1, story=route(STORY)))
    stream = front.client().chat.completions.create(
        model="story", messages=[{"role": "user", "content": "x"}], stream=True
    )

    next(iter(stream))
    assert sum(front.state.replicas.in_flight().values()) == 1
    stream.close()
    fake.release.set()

    eventually(
        lambda: sum(front.state.replicas.in_flight().values()) == 0, timeout=10, interval=0.02
    )


def test_a_stream_the_replica_breaks_off_ends_in_an_error_the_client_raises(
    gateways: Callable[..., Gateway], stub: tuple[Stub, Served]
) -> None:
    front = gateways(stub[1].url)
    front.push(routing(1, cut=route(CUT)))
    stream = front.client().chat.completions.create(
        model="cut", messages=[{"role": "user", "content": "x"}], stream=True
    )
    chunks = iter(stream)

    assert next(chunks).choices[0].delta.content == "Once"
    with pytest.raises(openai.APIError) as broken:
        next(chunks)
    assert broken.value.body == {
        "message": "The replica broke off the stream before its end.",
        "type": "server_error",
        "param": None,
        "code": "replica_unavailable",
    }
    unreachable = labels(model_name="cut", target_model_name=CUT, error_code="unreachable")
    assert front.metrics()[("inference_model_request_error_total", unreachable)] == 1


def test_a_replicas_error_in_another_shape_reaches_the_client_in_openais(
    gateways: Callable[..., Gateway], stub: tuple[Stub, Served]
) -> None:
    front = gateways(stub[1].url)
    front.push(routing(1, plain=route(PLAIN)))

    with pytest.raises(openai.InternalServerError) as failed:
        front.client().chat.completions.create(
            model="plain", messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.body == {
        "message": "Internal Server Error",
        "type": "server_error",
        "param": None,
        "code": 500,
    }


def test_without_a_valid_key_the_client_gets_401_in_openais_shape(gateway: Gateway) -> None:
    for key in ("sk-wrong", ADMIN_KEY):
        with pytest.raises(openai.AuthenticationError) as refused:
            gateway.client(key).models.list()
        assert refused.value.code == "invalid_api_key"
    bare = httpx.post(f"{gateway.url}/v1/completions", json={"model": "chat", "prompt": "x"})
    assert bare.status_code == 401
    assert set(bare.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200  # outside /v1: open


def test_an_unknown_model_is_404_naming_what_serves_and_an_empty_one_400(
    gateway: Gateway,
) -> None:
    client = gateway.client()
    with pytest.raises(openai.NotFoundError) as unknown:
        client.completions.create(model="nope", prompt="x", max_tokens=1)
    assert unknown.value.code == "model_not_found"
    assert "chat" in unknown.value.message and "story" in unknown.value.message

    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="", prompt="x", max_tokens=1)


def test_models_lists_the_base_and_the_logical_names_that_serve(
    gateway: Gateway, tiny: Kit
) -> None:
    client = gateway.client()
    base = tiny.model_ids["main"]

    assert [m.id for m in client.models.list()] == [base, "chat", "story"]
    card = client.models.retrieve("chat")
    assert (card.id, card.object, card.owned_by) == ("chat", "model", "adapter-promotion")
    assert card.created > 0
    assert client.models.retrieve(base).id == base  # a name with a slash
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(STABLE)


def test_a_push_older_than_the_routing_applied_is_refused(
    gateways: Callable[..., Gateway], replica: Served
) -> None:
    front = gateways(replica.url)

    assert front.push(routing(5, chat=route(STABLE))).json() == {"accepted": True, "generation": 5}
    assert front.push(routing(4, chat=route(CANARY))).json() == {"accepted": False, "generation": 5}
    assert front.push(routing(9, chat=route(CANARY)), key="sk-wrong").status_code == 401
    assert front.push(routing(9, chat=route(CANARY)), key=CLIENT_KEY).status_code == 401
    assert front.push(routing(9, other={}) | {"environment": "prod"}).status_code == 400

    applied = httpx.get(f"{front.url}/v1/routing").json()
    assert (
        applied["generation"] == 5 and applied["adapters"]["chat"]["active"]["lora_name"] == STABLE
    )
    raw = front.client().completions.with_raw_response.create(
        model="chat", prompt="x", max_tokens=1
    )
    assert served_model(raw) == STABLE
    metrics = front.metrics()
    assert metrics[("gateway_routing_generation", (("environment", "test"),))] == 5


def test_before_any_routing_adapters_get_503_and_the_base_still_serves(
    gateways: Callable[..., Gateway], replica: Served, tiny: Kit
) -> None:
    front = gateways(replica.url)
    client = front.client()

    with pytest.raises(openai.InternalServerError) as unavailable:
        client.completions.create(model="chat", prompt="x", max_tokens=1)
    assert unavailable.value.status_code == 503 and "no routing" in unavailable.value.message
    assert client.completions.create(model=tiny.model_ids["main"], prompt="x", max_tokens=1)
    assert httpx.get(f"{front.url}/v1/routing").json()["generation"] == -1


def test_a_restarted_gateway_pulls_the_routing_from_the_activator(
    gateways: Callable[..., Gateway], replica: Served
) -> None:
    activator = FastAPI()
    documents = [routing(3, chat=route(STABLE))]

    @activator.get("/routing/test")
    async def current() -> dict[str, Any]:
        return documents[-1]

    with Served(activator) as served:
        front = gateways(
            replica.url,
            GATEWAY_ROUTING_URL=f"{served.url}/routing/test",
            GATEWAY_ROUTING_POLL_S="0.05",
        )
        eventually(lambda: front.state.generation() == 3, timeout=10, interval=0.02)
        documents.append(routing(4, chat=route(STABLE, CANARY, 100)))
        eventually(lambda: front.state.generation() == 4, timeout=10, interval=0.02)
        assert front.push(routing(2, chat=route(STABLE))).json()["accepted"] is False

    raw = front.client().completions.with_raw_response.create(
        model="chat", prompt="x", max_tokens=1
    )
    assert served_model(raw) == CANARY


def test_replicas_that_refuse_or_lack_the_revision_are_skipped_then_503_names_it(
    gateways: Callable[..., Gateway], replica: Served, stub: tuple[Stub, Served]
) -> None:
    front = gateways(refused_url(), stub[1].url, replica.url)
    front.push(routing(1, chat=route(STABLE), absent=route(ABSENT)))
    client = front.client()

    for _ in range(3):  # each replica is asked first once, in turn
        raw = client.completions.with_raw_response.create(model="chat", prompt="x", max_tokens=1)
        assert served_model(raw) == STABLE

    with pytest.raises(openai.InternalServerError) as unavailable:
        client.completions.create(model="absent", prompt="x", max_tokens=1)
    assert unavailable.value.status_code == 503 and ABSENT in unavailable.value.message


def test_errors_are_counted_per_revision_for_replica_5xx_and_transport_never_client_4xx(
    gateways: Callable[..., Gateway], stub: tuple[Stub, Served]
) -> None:
    front = gateways(stub[1].url)
    front.push(routing(1, broken=route(BROKEN), story=route(STORY)))
    client = front.client()
    down = gateways(refused_url())
    down.push(routing(1, story=route(STORY)))

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    answer = client.chat.completions.create(
        model="story", messages=[{"role": "user", "content": "x"}]
    )
    assert answer.model == "story" and answer.usage is not None
    with pytest.raises(openai.InternalServerError):
        down.client().chat.completions.create(
            model="story", messages=[{"role": "user", "content": "x"}]
        )

    samples = front.metrics()
    broken = labels(model_name="broken", target_model_name=BROKEN)
    story = labels(model_name="story", target_model_name=STORY)
    assert samples[("inference_model_request_total", broken)] == 1
    failed = labels(model_name="broken", target_model_name=BROKEN, error_code="500")
    assert samples[("inference_model_request_error_total", failed)] == 1
    assert samples[("inference_model_request_total", story)] == 1
    assert samples[("inference_model_request_duration_seconds_count", story)] == 1
    assert samples[("inference_model_input_tokens_sum", story)] == 5
    errors = [dict(key[1]) for key in samples if key[0] == "inference_model_request_error_total"]
    assert [e["model_name"] for e in errors] == ["broken"]  # not the 404, not the success
    unreachable = labels(model_name="story", target_model_name=STORY, error_code="unreachable")
    assert down.metrics()[("inference_model_request_error_total", unreachable)] == 1


def test_the_routing_is_exported_as_gateway_api_inference_models(gateway: Gateway) -> None:
    exported = httpx.get(f"{gateway.url}/v1/routing/gateway-api", params={"pool": "vllm"}).json()
    chat = next(i for i in exported["items"] if i["spec"]["modelName"] == "chat")
    assert chat["spec"]["targetModels"] == [
        {"name": STABLE, "weight": 80},
        {"name": CANARY, "weight": 20},
    ]
    assert chat["spec"]["poolRef"]["name"] == "vllm"

    as_yaml = httpx.get(f"{gateway.url}/v1/routing/gateway-api", params={"format": "yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text)["items"][0]["kind"] == "InferenceModel"
