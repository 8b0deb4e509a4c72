"""The routing as Gateway API Inference Extension resources, answers renamed to the
logical name the client asked for, event by event, and replicas' errors in OpenAI's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from services.gateway.gie import (
    API_VERSION,
    inference_models,
    resource_name,
    target_models,
    to_yaml,
)
from services.gateway.rewrite import EventSplitter, openai_shaped, renamed, renamed_event
from shared.routing import Route, RoutingTable


@pytest.mark.parametrize(
    ("route", "targets"),
    [
        (Route("chat@0"), [{"name": "chat@0", "weight": 100}]),
        (
            Route("chat@0", "chat@1", 20),
            [{"name": "chat@0", "weight": 80}, {"name": "chat@1", "weight": 20}],
        ),
        (
            Route("chat@0", "chat@1", 0, frozenset({"acme"})),
            [{"name": "chat@0", "weight": 100}, {"name": "chat@1", "weight": 0}],
        ),
        (Route("chat@0", None, 30), [{"name": "chat@0", "weight": 100}]),  # no canary, no share
        (Route(None, "chat@1", 50), [{"name": "chat@1", "weight": 50}]),
    ],
)
def test_target_models_carry_each_revisions_weight(
    route: Route, targets: list[dict[str, Any]]
) -> None:
    assert target_models(route) == targets


TABLE = RoutingTable(
    9,
    {
        "chat": Route("chat@0", "chat@1", 20, frozenset({"acme", "beta"})),
        "Solo_Adapter": Route("solo@2"),
        "gone": Route(),
    },
)


def test_each_serving_adapter_becomes_an_inference_model_in_a_list() -> None:
    exported = inference_models(TABLE, "prod", pool="vllm-pool", namespace="serving")

    assert (exported["apiVersion"], exported["kind"]) == ("v1", "List")
    by_name = {item["spec"]["modelName"]: item for item in exported["items"]}
    assert set(by_name) == {"chat", "Solo_Adapter"}
    chat = by_name["chat"]
    assert (chat["apiVersion"], chat["kind"]) == (API_VERSION, "InferenceModel")
    assert chat["spec"]["poolRef"] == {
        "group": "inference.networking.x-k8s.io",
        "kind": "InferencePool",
        "name": "vllm-pool",
    }
    assert chat["spec"]["targetModels"] == target_models(TABLE.routes["chat"])
    assert chat["metadata"]["namespace"] == "serving"
    assert chat["metadata"]["annotations"] == {
        "adapter-promotion/routing-generation": "9",
        "adapter-promotion/canary-tenants": "acme,beta",
    }
    assert by_name["Solo_Adapter"]["metadata"]["name"] == "solo-adapter"


@pytest.mark.parametrize(
    ("adapter", "name"), [("chat", "chat"), ("My_Bot v2", "my-bot-v2"), ("__", "adapter")]
)
def test_resource_names_are_dns_subdomains(adapter: str, name: str) -> None:
    assert resource_name(adapter) == name


@pytest.mark.parametrize(
    "value",
    [
        inference_models(TABLE, "prod", pool="p"),
        {
            "a": [],
            "b": {},
            "c": [[1, 2], {"x": None}],
            "d": "yes",
            "e": "1",
            "f": True,
            "g": "a: b",
        },
    ],
)
def test_the_yaml_reads_back_as_the_same_values(value: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(value)) == value


def test_an_answer_is_renamed_and_its_usage_read() -> None:
    answer = {"id": "x", "model": "chat@1", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    body, usage = renamed(json.dumps(answer).encode(), "chat")

    assert json.loads(body) == {**answer, "model": "chat"}
    assert usage == answer["usage"]
    assert renamed(b"not json", "chat") == (b"not json", None)
    assert renamed(b"[1]", "chat") == (b"[1]", None)


SHAPED = {"message": "no such lora", "type": "NotFoundError", "param": "model", "code": 404}


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        (json.dumps({"error": SHAPED}).encode(), 404, SHAPED),
        (b"Internal Server Error", 500, "Internal Server Error"),
        (b'{"detail": "Not Found"}', 404, "Not Found"),
        (b'{"error": "Unauthorized"}', 401, "Unauthorized"),
        (b'{"object": "error", "message": "too long"}', 400, "too long"),
        (b"[1, 2]", 502, "[1, 2]"),
        (b"", 503, "The replica answered 503."),
    ],
)
def test_a_replicas_error_reaches_the_client_in_openais_shape(
    answer: bytes, status: int, error: dict[str, Any] | str
) -> None:
    shaped = json.loads(openai_shaped(answer, status))["error"]

    if isinstance(error, dict):
        assert shaped == error
    else:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        assert shaped == {"message": error, "type": kind, "param": None, "code": status}


def test_an_event_is_renamed_line_by_line_and_done_is_left_alone() -> None:
    event = b'id: 1\ndata: {"model": "chat@1", "choices": []}'

    renamed_text, usage = renamed_event(event, "chat")

    assert renamed_text.split(b"\n")[0] == b"id: 1"
    assert json.loads(renamed_text.split(b"\n")[1].removeprefix(b"data: ")) == {
        "model": "chat",
        "choices": [],
    }
    assert usage is None
    assert renamed_event(b"data: [DONE]", "chat") == (b"data: [DONE]", None)


def test_events_are_cut_as_soon_as_each_ends_whatever_the_chunks() -> None:
    splitter = EventSplitter()

    assert list(splitter.feed(b"data: 1\n")) == []
    assert list(splitter.feed(b"\ndata: 2\r\n\r")) == [b"data: 1"]
    assert list(splitter.feed(b"\ndata: 3\n\ndata: [DO")) == [b"data: 2", b"data: 3"]
    assert splitter.rest() == b"data: [DO"
