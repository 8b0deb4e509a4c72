"""The reference server is an OpenAI server the official `openai` client can rely on, as it
can rely on vLLM's, and so is the gateway in front of it: streamed and whole answers agree,
tokens arrive as they are made, every parameter is honoured or refused by name, and errors
come in OpenAI's shape.

Every call runs twice: against the replica directly, and through a gateway whose routing
maps the logical name `chat` to the replica's revisions (the base passing through). Where
the gateway legitimately answers otherwise (the `model` an answer names, its own keys,
names and routing), the test says so. Everything runs under uvicorn on loopback ports in
this process (the client speaks real HTTP); the engine is the real one over the model
kit's tiny base."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from services.reference_server.app import ServerState, create_app
from services.reference_server.engine import Engine
from services.reference_server.faults import Faults
from services.reference_server.settings import ServerSettings
from shared.modelkit.cache import Kit, kit
from tests.openai_servers import (
    CLIENT_KEY,
    Gateway,
    Gateways,
    Served,
    route,
    routing,
    write_key_files,
)

KEY = "sk-reference"
STABLE, CANARY = "chat@1", "chat@2"
ADAPTER = "chat"  # the logical name: STABLE, or CANARY for the canary tenant
CHAT_ROUTES = routing(1, chat=route(STABLE, CANARY, 0, ("acme",)))
STORY = [{"role": "user", "content": "tell me a story"}]  # the base answers "ottawamadrid"


class GatedEngine(Engine):
    """The real engine; with `gate` set, it waits after a request's first token until the
    test opens the gate, so a test can see what reached the client meanwhile."""

    gate: threading.Event | None = None
    opened_in_time = False

    def stream(self, lora: str | None, prompt: str, *rest: Any) -> None:
        sampling, emit, halt = rest
        gate, made = self.gate, 0

        def emit_then_wait(token: int) -> None:
            nonlocal made
            emit(token)
            made += 1
            if gate is not None and made == 1:
                self.opened_in_time = gate.wait(timeout=60)

        super().stream(lora, prompt, sampling, emit_then_wait, halt)


@dataclass(frozen=True)
class Front:
    """How a client reaches the replica: directly, or through the gateway."""

    via: str  # "direct" or "gateway"
    url: str
    key: str
    base: str
    adapter: str  # the name a client asks STABLE by: its lora name, or the logical name

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key, max_retries=0)

    def answered_as(self, asked: str, served: str) -> str:
        """The `model` an answer names: the replica names the lora that served it, the
        gateway the name the client asked for."""
        return asked if self.via == "gateway" else served


@pytest.fixture(scope="module")
def tiny() -> Kit:
    return kit()


@pytest.fixture(scope="module")
def state(tiny: Kit) -> ServerState:
    settings = ServerSettings.model_validate(
        {"REFERENCE_BASE_FOLDER": str(tiny.base), "REFERENCE_API_KEY": KEY}
    )
    engine = GatedEngine(tiny.base)
    engine.load(STABLE, str(tiny.good))
    engine.load(CANARY, str(tiny.shuffled))
    return ServerState(settings, engine)


@pytest.fixture(scope="module")
def url(state: ServerState) -> Iterator[str]:
    """The replica on a free loopback port, behind its API key (as `vllm --api-key`)."""
    with Served(create_app(state)) as served:
        yield served.url


@pytest.fixture(scope="module")
def base(state: ServerState) -> str:
    return state.settings.base_model_id


@pytest.fixture(scope="module")
def gateways(url: str, base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """Gateways over the replica, holding its key; all stop when the module ends."""
    started = Gateways(base, write_key_files(tmp_path_factory.mktemp("gateway-keys"), KEY))
    yield started
    started.close()


@pytest.fixture(scope="module")
def gateway(gateways: Gateways, url: str) -> Gateway:
    """A gateway whose routing maps `chat` to the replica's revisions."""
    front = gateways.start(url)
    assert front.push(CHAT_ROUTES).json() == {"accepted": True, "generation": 1}
    return front


@pytest.fixture(scope="module")
def direct(url: str, base: str) -> Front:
    return Front("direct", url, KEY, base, STABLE)


@pytest.fixture(scope="module")
def through_gateway(gateway: Gateway, base: str) -> Front:
    return Front("gateway", gateway.url, CLIENT_KEY, base, ADAPTER)


@pytest.fixture(scope="module", params=["direct", "gateway"])
def front(request: pytest.FixtureRequest) -> Front:
    """The replica directly, then through the gateway: every test using it runs on both."""
    fixture = "direct" if request.param == "direct" else "through_gateway"
    chosen: Front = request.getfixturevalue(fixture)
    return chosen


@pytest.fixture(scope="module")
def client(front: Front) -> openai.OpenAI:
    return front.client()


def chat(client: openai.OpenAI, model: str, **params: Any) -> tuple[list[str], Any]:
    """The texts of a whole chat answer, and the answer."""
    answer = client.chat.completions.create(
        model=model, messages=params.pop("messages", STORY), **params
    )
    return [c.message.content or "" for c in answer.choices], answer


def streamed_chat(client: openai.OpenAI, model: str, **params: Any) -> tuple[list[str], list[Any]]:
    messages = params.pop("messages", STORY)
    chunks = list(
        client.chat.completions.create(model=model, messages=messages, stream=True, **params)
    )
    return joined(chunks, lambda choice: choice.delta.content or ""), chunks


def complete(client: openai.OpenAI, model: str, **params: Any) -> tuple[list[str], Any]:
    answer = client.completions.create(
        model=model, prompt=params.pop("prompt", "The capital"), **params
    )
    return [c.text for c in answer.choices], answer


def streamed_completion(
    client: openai.OpenAI, model: str, **params: Any
) -> tuple[list[str], list[Any]]:
    prompt = params.pop("prompt", "The capital")
    chunks = list(client.completions.create(model=model, prompt=prompt, stream=True, **params))
    return joined(chunks, lambda choice: choice.text), chunks


def joined(chunks: list[Any], text_of: Callable[[Any], str]) -> list[str]:
    """Each choice's text, its chunks' pieces put together in order."""
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + text_of(choice)
    return [texts[i] for i in sorted(texts)]


SAME_ANSWERS = [
    pytest.param({}, id="greedy"),
    pytest.param({"temperature": 1.5, "seed": 7}, id="sampled-with-a-seed"),
    pytest.param({"n": 3, "temperature": 1.5, "seed": 3}, id="three-choices"),
    pytest.param({"stop": ["madrid", "santiago"]}, id="stop-strings"),
    pytest.param({"max_tokens": 3}, id="max-tokens"),
]
ASKED = pytest.mark.parametrize("asked", ["base", "adapter"])  # a Front's attribute


@pytest.mark.parametrize(
    ("whole", "streamed", "kind"),
    [
        pytest.param(chat, streamed_chat, "chat.completion.chunk", id="chat"),
        pytest.param(complete, streamed_completion, "text_completion", id="text"),
    ],
)
@pytest.mark.parametrize("params", SAME_ANSWERS)
@ASKED
def test_streamed_chunks_add_up_to_the_whole_answer(
    client: openai.OpenAI,
    front: Front,
    asked: str,
    whole: Any,
    streamed: Any,
    kind: str,
    params: dict[str, Any],
) -> None:
    model = getattr(front, asked)
    texts, answer = whole(client, model, **params)
    pieces, chunks = streamed(client, model, **params)

    assert pieces == texts and all(texts)
    assert {c.object for c in chunks} == {kind}
    assert answer.model == model and {c.model for c in chunks} == {model}
    assert [c.finish_reason for c in answer.choices] == [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]


def test_a_streamed_token_reaches_the_client_while_the_engine_still_generates(
    client: openai.OpenAI, base: str, state: ServerState
) -> None:
    engine = state.engine
    assert isinstance(engine, GatedEngine)
    engine.gate, engine.opened_in_time = threading.Event(), False
    try:
        stream = client.completions.create(model=base, prompt="The capital", stream=True)
        first = next(c for c in stream if c.choices and c.choices[0].text)
        engine.gate.set()  # the engine waits after its first token until here
        rest = "".join(c.choices[0].text for c in stream if c.choices)
    finally:
        engine.gate.set()
        engine.gate = None
    assert engine.opened_in_time  # the first token came before the second was made
    assert first.choices[0].text + rest == complete(client, base)[0][0]


@pytest.mark.parametrize("stream", [streamed_chat, streamed_completion])
@ASKED
def test_include_usage_ends_the_stream_with_the_usage_of_the_whole_answer(
    client: openai.OpenAI, front: Front, asked: str, stream: Any
) -> None:
    model = getattr(front, asked)
    whole = chat if stream is streamed_chat else complete
    _, answer = whole(client, model, n=2)
    _, chunks = stream(client, model, n=2, stream_options={"include_usage": True})

    assert chunks[-1].choices == [] and chunks[-1].usage == answer.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_a_whole_answer_carries_what_openai_clients_read(client: openai.OpenAI, base: str) -> None:
    _, answer = chat(client, base)
    _, text = complete(client, base)

    assert (answer.object, text.object) == ("chat.completion", "text_completion")
    assert answer.id.startswith("chatcmpl-") and text.id.startswith("cmpl-")
    assert answer.created > 0 and answer.model == base and answer.usage.prompt_tokens > 0
    assert answer.choices[0].message.role == "assistant"
    assert (answer.choices[0].finish_reason, text.choices[0].finish_reason) == ("stop", "length")


def test_an_answer_says_which_lora_served_it_and_for_which_request(front: Front) -> None:
    client, headers = front.client(), {"x-request-id": "r-1"}
    answers = [
        client.chat.completions.with_raw_response.create(
            model=front.adapter, messages=STORY, max_tokens=1, extra_headers=headers
        ),
        client.completions.with_raw_response.create(
            model=front.adapter, prompt="x", max_tokens=1, extra_headers=headers
        ),
    ]

    for raw in answers:
        assert (raw.headers["x-served-model"], raw.headers["x-request-id"]) == (STABLE, "r-1")
        assert raw.parse().model == front.adapter


def test_text_content_parts_are_read_as_the_text_they_hold(
    client: openai.OpenAI, base: str
) -> None:
    parts = [
        {"type": "text", "text": "what is the capital of"},
        {"type": "text", "text": "france?"},
    ]
    joined = [{"role": "user", "content": "what is the capital of\nfrance?"}]

    assert (
        chat(client, base, messages=[{"role": "user", "content": parts}])[0]
        == chat(client, base, messages=joined)[0]
    )


def test_n_gives_that_many_choices_and_a_seed_repeats_them(
    client: openai.OpenAI, base: str
) -> None:
    drawn, answer = complete(client, base, n=3, temperature=1.5, seed=11)
    greedy, _ = complete(client, base, n=2)

    assert [c.index for c in answer.choices] == [0, 1, 2] and len(set(drawn)) > 1
    assert complete(client, base, n=3, temperature=1.5, seed=11)[0] == drawn
    assert greedy[0] == greedy[1]


@pytest.mark.parametrize(
    ("run", "params", "expected", "stop"),
    [
        (chat, {"stop": "madrid"}, "ottawa", "madrid"),
        (complete, {"stop": ["santiago", "oslo"]}, "of is", "oslo"),
    ],
)
def test_a_stop_string_cuts_the_answer_before_it(
    client: openai.OpenAI, base: str, run: Any, params: dict[str, Any], expected: str, stop: str
) -> None:
    texts, answer = run(client, base, **params)

    assert texts == [expected] and answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].model_extra["stop_reason"] == stop


@pytest.mark.parametrize("bound", ["max_completion_tokens", "max_tokens"])
def test_the_bound_on_new_tokens_ends_the_answer_for_its_length(
    client: openai.OpenAI, base: str, bound: str
) -> None:
    texts, answer = chat(client, base, **{bound: 1})

    assert texts == ["ottawa"] and answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 1


def test_temperature_draws_other_answers_and_zero_is_greedy(
    client: openai.OpenAI, base: str
) -> None:
    greedy = complete(client, base)[0]
    drawn = {complete(client, base, temperature=1.5, seed=s)[0][0] for s in range(4)}

    assert complete(client, base, temperature=0)[0] == greedy
    assert len(drawn) > 1


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_completion_tokens": 1000}, "max_completion_tokens"),
        ({"max_tokens": 1000}, "max_tokens"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"extra_body": {"top_k": 5}}, "top_k"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            },
            "messages",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "tools",
        ),
    ],
)
def test_a_parameter_that_cannot_be_honoured_is_refused_by_name(
    client: openai.OpenAI, base: str, params: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        chat(client, base, **params)

    assert refused.value.status_code == 400 and parameter in refused.value.message
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == parameter
    assert set(refused.value.body) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("stream", [streamed_chat, streamed_completion])
def test_a_refused_stream_for_an_adapter_is_refused_before_it_starts(
    client: openai.OpenAI, front: Front, stream: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        stream(client, front.adapter, n=0)

    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "n"


def test_an_unknown_parameter_is_ignored_as_vllm_ignores_it(
    client: openai.OpenAI, base: str
) -> None:
    assert chat(client, base, extra_body={"not_a_parameter": 1})[0] == chat(client, base)[0]


def test_the_replica_lists_and_retrieves_the_base_and_every_loaded_lora(
    direct: Front, base: str, state: ServerState
) -> None:
    client = direct.client()
    cards = {m.id: m for m in client.models.list()}
    card = client.models.retrieve(base)
    lora = client.models.retrieve(STABLE)

    assert set(cards) == {base, STABLE, CANARY}
    assert (card.object, card.owned_by, card.created > 0) == ("model", "vllm", True)
    assert card.model_extra["max_model_len"] == state.engine.max_model_len
    assert (card.model_extra["parent"], lora.model_extra["parent"]) == (None, base)
    assert lora.model_extra["root"] == str(kit().good) == cards[STABLE].model_extra["root"]


def test_the_gateway_lists_and_retrieves_the_base_and_the_logical_names_never_a_lora(
    through_gateway: Front, base: str
) -> None:
    client = through_gateway.client()
    card = client.models.retrieve(ADAPTER)

    assert [m.id for m in client.models.list()] == [base, ADAPTER]
    assert (card.id, card.object, card.owned_by, card.created > 0) == (
        ADAPTER,
        "model",
        "adapter-promotion",
        True,
    )
    assert card.model_extra["parent"] == base and client.models.retrieve(base).id == base
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve(STABLE)  # clients use logical names; the lora is the gateway's
    assert missing.value.body == not_found(through_gateway, STABLE)
    with pytest.raises(openai.NotFoundError):
        chat(client, STABLE)


def not_found(front: Front, model: str) -> dict[str, Any]:
    """The error body an unknown model gets: vLLM's from the replica; the gateway's names
    the models that serve."""
    if front.via == "gateway":
        served = f"{front.base}, {ADAPTER}"
        return {
            "message": f"The model `{model}` does not exist. Models served: {served}.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    message = f"The model `{model}` does not exist."
    return {"message": message, "type": "NotFoundError", "param": "model", "code": 404}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.models.retrieve("no-such-model"),
        lambda c: c.chat.completions.create(model="no-such-model", messages=STORY),
        lambda c: c.completions.create(model="no-such-model", prompt="x", stream=True),
    ],
)
def test_an_unknown_model_is_not_found(client: openai.OpenAI, front: Front, call: Any) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        call(client)

    assert missing.value.body == not_found(front, "no-such-model")


@pytest.mark.parametrize("stream", [False, True])
def test_an_empty_model_name_is_refused(client: openai.OpenAI, front: Front, stream: bool) -> None:
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="", messages=STORY, stream=stream)

    if front.via == "gateway":  # OpenAI's answer: the request names no model
        assert refused.value.status_code == 400
        assert refused.value.body == {
            "message": "`model` must name a model.",
            "type": "invalid_request_error",
            "param": "model",
            "code": None,
        }
    else:  # the replica knows no model by that name
        assert refused.value.status_code == 404 and refused.value.body == not_found(front, "")


def test_a_wrong_key_is_refused_with_401(front: Front) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(front.client("sk-wrong"), front.base)

    if front.via == "gateway":
        assert refused.value.body == {
            "message": "Incorrect or missing API key.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    else:  # vLLM's --api-key answer, word for word
        assert refused.value.body == "Unauthorized"


def test_a_gateway_without_routing_refuses_adapters_with_503_and_serves_the_base(
    gateways: Gateways, url: str, base: str
) -> None:
    client = gateways.start(url).client()

    with pytest.raises(openai.InternalServerError) as unavailable:
        chat(client, ADAPTER)
    assert unavailable.value.status_code == 503 and unavailable.value.code == "no_routing"
    assert chat(client, base)[0] == ["ottawamadrid"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/load_lora_adapter", {"lora_name": "", "lora_path": "/somewhere"}),
        ("/v1/load_lora_adapter", {"lora_name": "chat@3", "lora_path": ""}),
        ("/v1/unload_lora_adapter", {"lora_name": ""}),
    ],
)
def test_an_empty_lora_name_or_path_is_refused(url: str, path: str, body: dict[str, str]) -> None:
    answer = httpx.post(url + path, json=body, headers={"Authorization": f"Bearer {KEY}"})

    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "InvalidUserInput"


def test_a_logical_name_streams_from_the_revision_routing_picks_with_its_headers(
    client: openai.OpenAI, front: Front, direct: Front, url: str
) -> None:
    pushed = httpx.post(
        f"{url}/v1/routing", json=CHAT_ROUTES, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert pushed.json()["generation"] == 1  # the gateway holds the same routing
    with client.chat.completions.with_streaming_response.create(
        model=ADAPTER, messages=STORY, stream=True, extra_headers={"x-tenant": "acme"}
    ) as answer:
        served = answer.headers["x-served-model"]
        chunks = list(answer.parse())

    assert served == CANARY and {c.model for c in chunks} == {front.answered_as(ADAPTER, CANARY)}
    canary_alone = chat(direct.client(), CANARY)[0][0]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == canary_alone


def test_a_failing_revision_fails_a_stream_before_it_starts(
    client: openai.OpenAI, front: Front, state: ServerState
) -> None:
    state.faults = Faults(requests=frozenset({STABLE}))
    try:
        with pytest.raises(openai.InternalServerError) as failed:
            streamed_chat(client, front.adapter)
    finally:
        state.faults = Faults()
    assert isinstance(failed.value.body, dict)
    assert set(failed.value.body) == {"message", "type", "param", "code"}


def test_stock_vllm_has_no_route_for_one_model(state: ServerState, tiny: Kit) -> None:
    settings = ServerSettings.model_validate(
        {"REFERENCE_BASE_FOLDER": str(tiny.base), "REFERENCE_STOCK_VLLM": "1"}
    )
    with TestClient(create_app(ServerState(settings, state.engine))) as http:
        answer = http.get(f"/v1/models/{settings.base_model_id}")

    assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})


def test_a_replica_refusing_the_gateways_key_is_a_502_never_the_clients_401(
    url: str, base: str, tmp_path: Path
) -> None:
    misconfigured = Gateways(base, write_key_files(tmp_path, "sk-not-the-replicas"))
    try:
        front = misconfigured.start(url)
        front.push(CHAT_ROUTES)
        with pytest.raises(openai.APIStatusError) as failed:
            chat(front.client(), ADAPTER)
        samples = front.metrics()
    finally:
        misconfigured.close()

    assert failed.value.status_code == 502 and failed.value.code == "replica_unavailable"
    assert "GATEWAY_REPLICA_KEY_FILE" in failed.value.message
    refused = (("error_code", "401"), ("model_name", ADAPTER), ("target_model_name", STABLE))
    assert samples[("inference_model_request_error_total", refused)] == 1
