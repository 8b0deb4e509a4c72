"""Driving a fleet of replicas: the contract is checked before any load, every replica must
list the revision before traffic moves, loads retry with backoff and fail clearly.

The replicas are fakes of a remote vLLM fleet (outside our bounded context); the vLLM HTTP
client itself is tested against recorded vLLM answers in test_activator_vllm_target.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from services.activator.fleet import Fleet, RolloutStopped
from services.activator.ports import BaseCard, TargetError
from services.activator.routing import lora_name
from shared.backoff import Backoff
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.manifest import FileEntry, Manifest
from shared.pointers import EnvironmentPointer

BASE = ServingContract(
    base_model_id="tiny",
    base_model_revision="sha256:" + "b" * 64,
    tokenizer_hash="sha256:" + "c" * 64,
    chat_template_hash="sha256:" + "d" * 64,
    quantization_profile="bf16",
)
SPEC = EnvironmentSpec(
    name="prod",
    base_model_id=BASE.base_model_id,
    base_model_revision=BASE.base_model_revision,
    tokenizer_hash=BASE.tokenizer_hash,
    chat_template_hash=BASE.chat_template_hash,
)

# What a stock vLLM replica started as `vllm serve /models/tiny/<revision> --served-model-name
# tiny` lists as its base in `GET /v1/models`.
PROVEN = BaseCard("tiny", "/models/tiny/" + BASE.base_model_revision.removeprefix("sha256:"))


def manifest(revision: str = "sha256:" + "1" * 64, **overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "adapter": "chat",
        "revision": revision,
        "files": (FileEntry(path="adapter_model.safetensors", sha256="e" * 64, size=1),),
        "base_model_id": BASE.base_model_id,
        "base_model_revision": BASE.base_model_revision,
        "tokenizer_revision": "tok-1",
        "tokenizer_hash": BASE.tokenizer_hash,
        "chat_template_hash": BASE.chat_template_hash,
        "quantization_profile": "bf16",
        "submitter": "alice",
        "trained_event_id": "t",
        "source_uri": "file:///x",
    }
    return Manifest(**{**fields, **overrides})


class FakeReplica:
    """A vLLM replica: `silent` answers loads without loading; `failures` fail the next loads."""

    def __init__(self, url: str, *, contract: ServingContract | None = BASE) -> None:
        self.url = url
        self.contract = contract
        self.loaded: dict[str, str] = {}
        self.silent = False
        self.lost_loads = 0  # loads it answers and then loses (it restarted in between)
        self.failures: list[TargetError] = []
        self.load_calls = 0
        self.routing: Mapping[str, Any] | None = None
        self.base_card: BaseCard | None = None
        self.unserved: set[str] = set()
        self.takes_routing = True

    async def describe(self) -> ServingContract | None:
        return self.contract

    async def models(self) -> Mapping[str, str]:
        return dict(self.loaded)

    async def load(self, lora_name: str, lora_path: str) -> None:
        self.load_calls += 1
        if self.failures:
            raise self.failures.pop(0)
        if self.lost_loads:
            self.lost_loads -= 1
        elif not self.silent:
            self.loaded[lora_name] = lora_path

    async def unload(self, lora_name: str) -> None:
        self.loaded.pop(lora_name, None)

    async def base(self) -> BaseCard | None:
        return self.base_card

    async def probe(self, lora_name: str) -> int:
        if lora_name not in self.loaded or lora_name in self.unserved:
            raise TargetError(self.url, f"The model `{lora_name}` does not exist.", retryable=True)
        return 200

    async def routes_traffic(self) -> bool:
        return self.takes_routing

    async def push_routing(self, document: Mapping[str, Any]) -> bool:
        self.routing = document
        return True

    async def metrics(self) -> str:
        return ""


class FakeStore:
    def __init__(self, urls: list[str], pointers: dict[str, EnvironmentPointer] | None = None):
        self.urls = urls
        self._pointers = pointers or {}

    async def replicas(self, environment: str) -> list[str]:
        return self.urls

    async def pointers(self, environment: str) -> tuple[dict[str, EnvironmentPointer], int]:
        return self._pointers, 7


class FakeCatalogue:
    def __init__(self, spec: EnvironmentSpec) -> None:
        self.spec = spec

    async def environment(self, name: str) -> EnvironmentSpec | None:
        return self.spec if name == self.spec.name else None


def fleet_of(
    *replicas: FakeReplica,
    pointers: Any = None,
    routing: Path | None = None,
    gateways: tuple[FakeReplica, ...] = (),
) -> Fleet:
    by_url = {r.url: r for r in replicas}
    gateway_by_url = {g.url: g for g in gateways}
    spec = dataclasses.replace(SPEC, gateways=tuple(gateway_by_url))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fleet = Fleet(
        FakeStore(list(by_url), pointers),  # type: ignore[arg-type]
        lambda url, environment: by_url[url],
        retry=Backoff(attempts=4, first_delay_s=0.5, max_delay_s=1.0),
        routing_dir=routing,
        sleep=sleep,
        catalogue=FakeCatalogue(spec),  # type: ignore[arg-type]
        make_gateway=lambda url, environment: gateway_by_url[url],
    )
    fleet.slept = slept  # type: ignore[attr-defined]
    return fleet


async def test_every_replica_loads_the_revision_under_its_digest_qualified_name() -> None:
    one, two = FakeReplica("http://r1"), FakeReplica("http://r2")
    wanted = manifest()

    evidence = await fleet_of(one, two).prepare("prod", SPEC, [(wanted, "/store/chat/1")])

    name = lora_name("chat", wanted.revision)
    assert name == "chat@" + "1" * 16
    assert one.loaded == two.loaded == {name: "/store/chat/1"}
    assert evidence[f"loaded.{name}"] == "2 replicas, 0 already warm"


async def test_a_revision_listed_already_is_not_loaded_again() -> None:
    replica = FakeReplica("http://r1")
    replica.loaded[lora_name("chat", manifest().revision)] = "/store"

    evidence = await fleet_of(replica).prepare("prod", SPEC, [(manifest(), "/store")])

    assert replica.load_calls == 0
    assert evidence["loaded.chat@" + "1" * 16] == "1 replicas, 1 already warm"


@pytest.mark.parametrize(
    ("changed", "where"),
    [
        ({"tokenizer_hash": "sha256:" + "f" * 64}, "tokenizer_hash"),
        ({"chat_template_hash": "sha256:" + "f" * 64}, "chat_template_hash"),
        ({"base_model_revision": "sha256:" + "f" * 64}, "base_model_revision"),
        ({"quantization_profile": "int4-awq"}, "quantization_profile"),
    ],
)
async def test_a_manifest_the_replicas_cannot_serve_stops_before_any_load(
    changed: dict[str, str], where: str
) -> None:
    replica = FakeReplica("http://r1")

    with pytest.raises(RolloutStopped) as stopped:
        await fleet_of(replica).prepare("prod", SPEC, [(manifest(**changed), "/store")])

    assert replica.load_calls == 0
    assert f"replica http://r1: {where} is" in str(stopped.value)
    assert f"environment prod: {where} is" in str(stopped.value)
    assert stopped.value.evidence["stopped_by"] == "contract"


async def test_a_replica_running_another_base_stops_the_rollout_even_if_the_spec_matches() -> None:
    other = FakeReplica("http://r2", contract=dataclasses.replace(BASE, base_model_id="big"))
    plain_vllm = FakeReplica("http://r1", contract=None)  # no /info: it shows its base card
    plain_vllm.base_card = PROVEN

    with pytest.raises(RolloutStopped, match="replica http://r2: base_model_id is big"):
        await fleet_of(plain_vllm, other).prepare("prod", SPEC, [(manifest(), "/store")])
    assert plain_vllm.load_calls == other.load_calls == 0


async def test_a_load_answered_with_success_but_not_listed_stops_the_rollout() -> None:
    good, silent = FakeReplica("http://r1"), FakeReplica("http://r2")
    silent.silent = True

    with pytest.raises(RolloutStopped, match="not listed by http://r2") as stopped:
        await fleet_of(good, silent).prepare("prod", SPEC, [(manifest(), "/store")])

    assert stopped.value.evidence["stopped_by"] == "verify"


async def test_a_replica_that_lost_the_load_when_it_restarted_is_loaded_again() -> None:
    steady, restarted = FakeReplica("http://r1"), FakeReplica("http://r2")
    restarted.lost_loads = 1
    fleet = fleet_of(steady, restarted)

    await fleet.prepare("prod", SPEC, [(manifest(), "/store")])

    name = lora_name("chat", manifest().revision)
    assert name in steady.loaded and name in restarted.loaded
    assert (steady.load_calls, restarted.load_calls) == (1, 2)
    assert fleet.slept == [0.5]  # type: ignore[attr-defined]


async def test_a_transient_load_failure_is_retried_with_backoff() -> None:
    replica = FakeReplica("http://r1")
    replica.failures = [TargetError("http://r1", "503", retryable=True)] * 2
    fleet = fleet_of(replica)

    await fleet.prepare("prod", SPEC, [(manifest(), "/store")])

    assert replica.load_calls == 3
    assert fleet.slept == [0.5, 1.0]  # type: ignore[attr-defined]


async def test_a_load_that_keeps_failing_or_is_refused_fails_clearly() -> None:
    flaky, refused = FakeReplica("http://r1"), FakeReplica("http://r2")
    flaky.failures = [TargetError("http://r1", "answered 500", retryable=True)] * 9
    refused.failures = [TargetError("http://r2", "answered 404: no such path", retryable=False)]

    with pytest.raises(RolloutStopped) as stopped:
        await fleet_of(flaky, refused).prepare("prod", SPEC, [(manifest(), "/store")])

    assert (flaky.load_calls, refused.load_calls) == (4, 1)
    assert "http://r1: http://r1: answered 500" in str(stopped.value)
    assert "no such path" in stopped.value.evidence["failures"]


async def test_publishing_routes_every_replica_and_writes_the_export(tmp_path: Path) -> None:
    one, two = FakeReplica("http://r1"), FakeReplica("http://r2")
    new, old = "sha256:" + "1" * 64, "sha256:" + "0" * 64
    pointers = {"chat": EnvironmentPointer(active=old, canary=new, canary_percent=10)}

    document = await fleet_of(one, two, pointers=pointers, routing=tmp_path).publish("prod")

    assert one.routing == two.routing == document
    assert document["generation"] == 7
    assert document["adapters"]["chat"]["weights"] == {
        lora_name("chat", old): 90,
        lora_name("chat", new): 10,
    }
    assert json.loads((tmp_path / "prod.json").read_text()) == document


async def test_pruning_unloads_only_what_neither_serves_nor_waits_as_the_target() -> None:
    replica = FakeReplica("http://r1")
    active, target, stale = ("sha256:" + c * 64 for c in "123")
    for revision in (active, target, stale):
        replica.loaded[lora_name("chat", revision)] = "/x"
    replica.loaded["other@" + "9" * 16] = "/y"
    pointers = {"chat": EnvironmentPointer(active=active, rollback_target=target)}

    await fleet_of(replica, pointers=pointers).prune("prod", "chat")

    assert set(replica.loaded) == {
        lora_name("chat", active),
        lora_name("chat", target),
        "other@" + "9" * 16,
    }


# Stock vLLM: a base card instead of /info, a probe after the listing, no routing


def stock_vllm(url: str, card: BaseCard | None = PROVEN) -> FakeReplica:
    replica = FakeReplica(url, contract=None)
    replica.base_card = card
    replica.takes_routing = False
    return replica


async def test_a_stock_vllm_replica_that_proves_its_base_is_loaded() -> None:
    replica = stock_vllm("http://r1")

    await fleet_of(replica).prepare("prod", SPEC, [(manifest(), "/store")])

    assert set(replica.loaded) == {lora_name("chat", manifest().revision)}


@pytest.mark.parametrize(
    ("card", "said"),
    [
        (BaseCard(id="big", root="/models/big/1"), "serves 'big' from '/models/big/1', not"),
        (BaseCard(id="tiny", root="/models/tiny/latest"), "does not name the base revision"),
        (None, "lists no base model"),
    ],
    ids=["another-model", "revision-unproven", "no-base-card"],
)
async def test_a_stock_vllm_replica_that_cannot_prove_its_base_stops_before_any_load(
    card: BaseCard | None, said: str
) -> None:
    replica = stock_vllm("http://r1", card)

    with pytest.raises(RolloutStopped, match=said) as stopped:
        await fleet_of(replica).prepare("prod", SPEC, [(manifest(), "/store")])

    assert replica.load_calls == 0 and stopped.value.evidence["stopped_by"] == "contract"


async def test_an_environment_that_opts_out_serves_on_replicas_that_cannot_prove_their_base() -> (
    None
):
    replica = stock_vllm("http://r1", BaseCard(id="tiny", root="/models/tiny/latest"))
    trusting = dataclasses.replace(SPEC, allow_unproven_replica_base=True)

    await fleet_of(replica).prepare("prod", trusting, [(manifest(), "/store")])

    assert replica.load_calls == 1
    # ... but never one that names another base: that is proof of the wrong one.
    other = stock_vllm("http://r2", BaseCard(id="big", root="/models/big/1"))
    with pytest.raises(RolloutStopped, match="not the environment's base"):
        await fleet_of(other).prepare("prod", trusting, [(manifest(), "/store")])


async def test_a_name_listed_but_not_served_is_loaded_again_then_stops_the_rollout() -> None:
    good, phantom = FakeReplica("http://r1"), FakeReplica("http://r2")
    name = lora_name("chat", manifest().revision)
    phantom.unserved.add(name)
    fleet = fleet_of(good, phantom)

    with pytest.raises(RolloutStopped, match="listed but not served") as stopped:
        await fleet.prepare("prod", SPEC, [(manifest(), "/store")])

    assert stopped.value.evidence == {
        "stopped_by": "verify",
        "lora_name": name,
        "missing_on": "http://r2",
    }
    assert len(fleet.slept) == 3  # type: ignore[attr-defined]  # it was given every retry


async def test_a_canary_share_needs_every_replica_to_take_the_routing() -> None:
    routed, stock = FakeReplica("http://r1"), stock_vllm("http://r2")

    await fleet_of(routed).check_routing("prod", 10)
    with pytest.raises(RolloutStopped, match="10% of traffic") as stopped:
        await fleet_of(routed, stock).check_routing("prod", 10)

    assert stopped.value.evidence == {"stopped_by": "routing", "takes_no_routing": "http://r2"}


async def test_a_gateway_in_front_of_stock_replicas_takes_the_canary_share() -> None:
    stock, gateway = stock_vllm("http://r1"), FakeReplica("http://gw")

    with pytest.raises(RolloutStopped, match="take no routing"):
        await fleet_of(stock).check_routing("prod", 20)
    await fleet_of(stock, gateways=(gateway,)).check_routing("prod", 20)  # no RolloutStopped


async def test_a_gateway_that_takes_no_routing_stops_the_canary_and_names_it() -> None:
    routed, gateway = FakeReplica("http://r1"), stock_vllm("http://gw")

    with pytest.raises(RolloutStopped, match="gateways of prod") as stopped:
        await fleet_of(routed, gateways=(gateway,)).check_routing("prod", 20)

    assert stopped.value.evidence == {"stopped_by": "routing", "takes_no_routing": "http://gw"}


async def test_routing_is_pushed_to_the_replicas_and_the_gateways() -> None:
    replica, gateway = FakeReplica("http://r1"), FakeReplica("http://gw")
    pointers = {"chat": EnvironmentPointer(active="sha256:" + "1" * 64)}

    document = await fleet_of(replica, pointers=pointers, gateways=(gateway,)).publish("prod")

    assert replica.routing == gateway.routing == document
    assert gateway.load_calls == 0


async def test_a_replica_that_refuses_to_show_its_base_stops_the_rollout_and_says_why() -> None:
    keyed = stock_vllm("http://r1")

    async def refuse() -> BaseCard | None:
        raise TargetError("http://r1", "GET /v1/models answered 401: ... API key", retryable=False)

    keyed.base = refuse  # type: ignore[method-assign]
    with pytest.raises(RolloutStopped, match=r"cannot show its base: .*API key"):
        await fleet_of(keyed).prepare("prod", SPEC, [(manifest(), "/store")])
    assert keyed.load_calls == 0
