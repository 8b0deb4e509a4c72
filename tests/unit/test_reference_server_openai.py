"""The reference server is an OpenAI server the official `openai` client can rely on, as it
can rely on vLLM's: streamed and whole answers agree, tokens arrive as they are made, every
parameter is honoured or refused by name, and errors come in OpenAI's shape.

The server runs under uvicorn on a loopback port in this process (the client speaks real
HTTP); the engine is the real one over the model kit's tiny base."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi.testclient import TestClient

from services.reference_server.app import ServerState, create_app
from services.reference_server.engine import Engine
from services.reference_server.faults import Faults
from services.reference_server.settings import ServerSettings
from shared.modelkit.cache import Kit, kit
from tests.eventually import eventually

KEY = "sk-reference"
STABLE, CANARY = "chat@1", "chat@2"
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
    """The server on a free loopback port, under uvicorn in a thread of this process."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    eventually(lambda: server.started, timeout=30, interval=0.01, message="uvicorn started")
    yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    listening.close()


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def base(state: ServerState) -> str:
    return state.settings.base_model_id


def chat(client: openai.OpenAI, base: str, **params: Any) -> tuple[list[str], Any]:
    """The texts of a whole chat answer, and the answer."""
    answer = client.chat.completions.create(
        model=base, messages=params.pop("messages", STORY), **params
    )
    return [c.message.content or "" for c in answer.choices], answer


def streamed_chat(client: openai.OpenAI, base: str, **params: Any) -> tuple[list[str], list[Any]]:
    messages = params.pop("messages", STORY)
    chunks = list(
        client.chat.completions.create(model=base, messages=messages, stream=True, **params)
    )
    return joined(chunks, lambda choice: choice.delta.content or ""), chunks


def complete(client: openai.OpenAI, base: str, **params: Any) -> tuple[list[str], Any]:
    answer = client.completions.create(
        model=base, prompt=params.pop("prompt", "The capital"), **params
    )
    return [c.text for c in answer.choices], answer


def streamed_completion(
    client: openai.OpenAI, base: str, **params: Any
) -> tuple[list[str], list[Any]]:
    prompt = params.pop("prompt", "The capital")
    chunks = list(client.completions.create(model=base, prompt=prompt, stream=True, **params))
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


@pytest.mark.parametrize(
    ("whole", "streamed", "kind"),
    [
        pytest.param(chat, streamed_chat, "chat.completion.chunk", id="chat"),
        pytest.param(complete, streamed_completion, "text_completion", id="text"),
    ],
)
@pytest.mark.parametrize("params", SAME_ANSWERS)
def test_streamed_chunks_add_up_to_the_whole_answer(
    client: openai.OpenAI, base: str, whole: Any, streamed: Any, kind: str, params: dict[str, Any]
) -> None:
    texts, answer = whole(client, base, **params)
    pieces, chunks = streamed(client, base, **params)

    assert pieces == texts and all(texts)
    assert {c.object for c in chunks} == {kind}
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
def test_include_usage_ends_the_stream_with_the_usage_of_the_whole_answer(
    client: openai.OpenAI, base: str, stream: Any
) -> None:
    whole = chat if stream is streamed_chat else complete
    _, answer = whole(client, base, n=2)
    _, chunks = stream(client, base, n=2, stream_options={"include_usage": True})

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


def test_an_unknown_parameter_is_ignored_as_vllm_ignores_it(
    client: openai.OpenAI, base: str
) -> None:
    assert chat(client, base, extra_body={"not_a_parameter": 1})[0] == chat(client, base)[0]


def test_models_are_listed_and_retrieved_with_their_cards(
    client: openai.OpenAI, base: str, state: ServerState
) -> None:
    cards = {m.id: m for m in client.models.list()}
    card = client.models.retrieve(base)
    lora = client.models.retrieve(STABLE)

    assert set(cards) == {base, STABLE, CANARY}
    assert (card.object, card.owned_by, card.created > 0) == ("model", "vllm", True)
    assert card.model_extra["max_model_len"] == state.engine.max_model_len
    assert (card.model_extra["parent"], lora.model_extra["parent"]) == (None, base)
    assert lora.model_extra["root"] == str(kit().good) == cards[STABLE].model_extra["root"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.models.retrieve("no-such-model"),
        lambda c: c.chat.completions.create(model="no-such-model", messages=STORY),
        lambda c: c.completions.create(model="no-such-model", prompt="x", stream=True),
    ],
)
def test_an_unknown_model_is_not_found(client: openai.OpenAI, call: Any) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        call(client)

    assert missing.value.body == {
        "message": "The model `no-such-model` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


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
    client: openai.OpenAI, url: str, base: str
) -> None:
    routing = {
        "generation": 1,
        "adapters": {
            "chat": {
                "active": {"revision": "sha256:1", "lora_name": STABLE},
                "canary": {"revision": "sha256:2", "lora_name": CANARY},
                "canary_percent": 0,
                "canary_tenants": ["acme"],
            }
        },
    }
    httpx.post(f"{url}/v1/routing", json=routing, headers={"Authorization": f"Bearer {KEY}"})
    with client.chat.completions.with_streaming_response.create(
        model="chat", messages=STORY, stream=True, extra_headers={"x-tenant": "acme"}
    ) as answer:
        served = answer.headers["x-served-model"]
        chunks = list(answer.parse())

    assert served == CANARY and {c.model for c in chunks} == {CANARY}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == chat(client, CANARY)[0][0]


def test_a_failing_revision_fails_a_stream_before_it_starts(
    client: openai.OpenAI, state: ServerState
) -> None:
    state.faults = Faults(requests=frozenset({STABLE}))
    try:
        with pytest.raises(openai.InternalServerError):
            streamed_chat(client, STABLE)
    finally:
        state.faults = Faults()


def test_stock_vllm_has_no_route_for_one_model(state: ServerState, tiny: Kit) -> None:
    settings = ServerSettings.model_validate(
        {"REFERENCE_BASE_FOLDER": str(tiny.base), "REFERENCE_STOCK_VLLM": "1"}
    )
    with TestClient(create_app(ServerState(settings, state.engine))) as http:
        answer = http.get(f"/v1/models/{settings.base_model_id}")

    assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})
