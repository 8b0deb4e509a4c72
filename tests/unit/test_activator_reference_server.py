"""The reference server routes by the pushed pointer, the same way on every replica, and its
fault switch fails exactly what a test names."""

from __future__ import annotations

import pytest

from services.reference_server.faults import Faults
from shared.routing import Route, RoutingTable, bucket, choose

DOCUMENT = {
    "generation": 42,
    "adapters": {
        "chat": {
            "active": {"revision": "sha256:0", "lora_name": "chat@0"},
            "canary": {"revision": "sha256:1", "lora_name": "chat@1"},
            "canary_percent": 10,
            "canary_tenants": ["acme"],
        },
        "solo": {"active": {"revision": "sha256:2", "lora_name": "solo@2"}, "canary": None},
    },
}


def test_the_pushed_document_becomes_a_routing_table() -> None:
    table = RoutingTable.from_document(DOCUMENT)

    assert table.generation == 42
    assert table.routes["chat"] == Route("chat@0", "chat@1", 10, frozenset({"acme"}))
    assert table.routes["solo"] == Route("solo@2", None, 0, frozenset())


def test_the_canary_takes_its_share_of_request_ids_and_the_same_id_lands_the_same() -> None:
    route = RoutingTable.from_document(DOCUMENT).routes["chat"]
    keys = [f"request-{i}" for i in range(5000)]

    chosen = [choose(route, k, None) for k in keys]

    assert chosen.count("chat@1") / len(keys) == pytest.approx(0.10, abs=0.015)
    assert chosen == [choose(route, k, None) for k in keys]
    assert all(0 <= bucket(k) < 100 for k in keys[:100])


def test_a_canary_tenant_always_gets_the_canary_and_others_never_at_zero_percent() -> None:
    route = Route("chat@0", "chat@1", 0, frozenset({"acme"}))

    assert {choose(route, f"r{i}", "acme") for i in range(50)} == {"chat@1"}
    assert {choose(route, f"r{i}", "globex") for i in range(50)} == {"chat@0"}


def test_an_adapter_with_nothing_active_serves_nothing_outside_its_canary_share() -> None:
    route = Route(None, "chat@1", 50, frozenset())

    assert {choose(route, f"r{i}", None) for i in range(200)} == {"chat@1", None}


def test_faults_match_a_lora_an_adapter_or_everything() -> None:
    faults = Faults.from_json(
        {
            "requests": ["chat@1"],
            "delays_s": {"slow": 0.5},
            "loads": {"chat": "silent", "*": "error"},
        }
    )

    assert faults.request_fails("chat@1") and not faults.request_fails("chat@0")
    assert faults.delay_s("slow@3") == 0.5 and faults.delay_s("chat@1") == 0.0
    assert faults.load_fault("chat@9") == "silent" and faults.load_fault("other@1") == "error"
    assert Faults().load_fault("chat@1") is None


def test_an_unknown_load_fault_is_refused() -> None:
    with pytest.raises(ValueError):
        Faults.from_json({"loads": {"chat": "explode"}})
