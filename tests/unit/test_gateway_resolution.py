"""The gateway resolves a logical name by the same choice replicas make, and applies a
routing document only when it is not older than the one in force."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.resolution import (
    Applied,
    Outcome,
    Resolution,
    WrongEnvironment,
    apply_document,
    resolve,
    serving_names,
)
from shared.routing import Route, RoutingDocumentError, RoutingTable, bucket, choose

BASE = "tiny"
TABLE = RoutingTable(
    generation=3,
    routes={
        "chat": Route("chat@0", "chat@1", 20, frozenset({"acme"})),
        "solo": Route("solo@2"),
        "dark": Route(None, "dark@3", 0, frozenset()),  # a canary at 0%, nothing active
        "gone": Route(),
    },
)
FIRST_CANARY_ID = next(f"r{i}" for i in range(1000) if bucket(f"r{i}") < 20)
FIRST_STABLE_ID = next(f"r{i}" for i in range(1000) if bucket(f"r{i}") >= 20)


@pytest.mark.parametrize(
    ("model", "table", "key", "tenant", "expected"),
    [
        ("", TABLE, "r", None, Resolution(Outcome.empty)),
        (BASE, TABLE, "r", None, Resolution(Outcome.base, BASE)),
        (BASE, None, "r", None, Resolution(Outcome.base, BASE)),  # the base needs no routing
        ("chat", None, "r", None, Resolution(Outcome.no_routing)),
        ("nope", TABLE, "r", None, Resolution(Outcome.unknown)),
        ("gone", TABLE, "r", None, Resolution(Outcome.unknown)),
        ("chat@0", TABLE, "r", None, Resolution(Outcome.unknown)),  # lora names stay inside
        ("chat", TABLE, FIRST_CANARY_ID, None, Resolution(Outcome.revision, "chat@1")),
        ("chat", TABLE, FIRST_STABLE_ID, None, Resolution(Outcome.revision, "chat@0")),
        ("chat", TABLE, FIRST_STABLE_ID, "acme", Resolution(Outcome.revision, "chat@1")),
        ("chat", TABLE, FIRST_STABLE_ID, "globex", Resolution(Outcome.revision, "chat@0")),
        ("solo", TABLE, FIRST_CANARY_ID, "acme", Resolution(Outcome.revision, "solo@2")),
        ("dark", TABLE, "r", None, Resolution(Outcome.unrouted)),
    ],
)
def test_a_model_name_resolves_to_the_base_a_revision_or_a_refusal(
    model: str, table: RoutingTable | None, key: str, tenant: str | None, expected: Resolution
) -> None:
    assert resolve(model, table, BASE, key, tenant) == expected


def test_the_gateway_and_the_replicas_choose_the_same_revision_for_every_request_id() -> None:
    route = TABLE.routes["chat"]
    for i in range(500):
        key = f"request-{i}"
        assert resolve("chat", TABLE, BASE, key, None).target == choose(route, key, None)


def test_only_names_with_a_revision_are_listed_as_serving() -> None:
    assert serving_names(TABLE) == ["chat", "dark", "solo"]
    assert serving_names(None) == []


def document(generation: int, environment: str | None = "prod") -> dict[str, Any]:
    active = {"revision": f"sha256:{generation}", "lora_name": f"chat@{generation}"}
    doc: dict[str, Any] = {"generation": generation, "adapters": {"chat": {"active": active}}}
    return doc if environment is None else {**doc, "environment": environment}


@pytest.mark.parametrize(
    ("applied", "incoming", "accepted", "in_force"),
    [
        (None, 5, True, 5),
        (5, 6, True, 6),
        (5, 5, True, 5),  # the same document again: harmless
        (5, 4, False, 5),  # a late, older push never undoes a newer one
        (5, 0, False, 5),
    ],
)
def test_a_document_is_applied_unless_the_one_in_force_is_newer(
    applied: int | None, incoming: int, accepted: bool, in_force: int
) -> None:
    before = None if applied is None else Applied(document(applied), RoutingTable(applied))

    after, was_accepted = apply_document(before, document(incoming), "prod")

    assert was_accepted is accepted
    assert after is not None and after.table.generation == in_force
    assert after.document["generation"] == in_force


def test_a_document_for_another_environment_is_refused_and_one_without_a_name_taken() -> None:
    with pytest.raises(WrongEnvironment, match="'staging'"):
        apply_document(None, document(1, "staging"), "prod")
    assert apply_document(None, document(1, None), "prod")[1] is True


@pytest.mark.parametrize(
    "bad",
    [
        {"generation": "x"},
        {"generation": 1, "adapters": {"chat": {"active": {"revision": "sha256:1"}}}},
        {"generation": 1, "adapters": ["chat"]},
        {"generation": 1, "adapters": {"chat": {"canary_percent": "a lot"}}},
    ],
)
def test_a_malformed_document_is_refused_with_the_kernels_error(bad: dict[str, Any]) -> None:
    with pytest.raises(RoutingDocumentError):
        apply_document(None, bad, "prod")
