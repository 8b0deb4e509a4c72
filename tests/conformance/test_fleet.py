"""The activator's fleet (`Fleet` over `VllmTarget`) driving vLLM's own HTTP layer: a
revision is loaded, listed and probed on every replica before traffic moves; a replica that
serves another base, or takes no runtime LoRA loads, stops the rollout with the reason."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest

from services.activator.adapters import VllmTarget
from services.activator.fleet import Fleet, RolloutStopped
from services.activator.routing import lora_name
from shared.backoff import Backoff
from shared.registry.memory import InMemoryRegistry
from tests.conformance.conftest import Replica, manifest
from tests.fakes.activator import InMemoryActivatorStore, environment_spec

pytestmark = pytest.mark.conformance

Folders = Callable[..., Path]
ENVIRONMENT = "prod"


async def _no_sleep(_: float) -> None:
    return None


def fleet_of(client: httpx.AsyncClient, replicas: Sequence[Replica]) -> Fleet:
    """A fleet of `replicas` in one environment; each target holds the key its replica wants
    (as the activator reads an environment's key file, replica by replica)."""
    keys = {r.url: r.api_key for r in replicas}
    store = InMemoryActivatorStore(InMemoryRegistry(), {ENVIRONMENT: [r.url for r in replicas]})
    return Fleet(
        store,
        lambda url, _environment: VllmTarget(url, client, api_key=keys[url]),
        retry=Backoff(attempts=2, first_delay_s=0.0),
        sleep=_no_sleep,
    )


def revision() -> str:
    return "sha256:" + secrets.token_hex(32)


async def listed(client: httpx.AsyncClient, replica: Replica) -> set[str]:
    return set(await VllmTarget(replica.url, client, api_key=replica.api_key).models())


async def test_a_revision_is_loaded_listed_and_probed_on_every_replica_and_warm_the_next_time(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders
) -> None:
    both = [replicas["open"], replicas["keyed"]]
    wanted, folder = manifest("chat", revision()), adapters()
    name = lora_name(wanted.adapter, wanted.revision)

    first = await fleet_of(client, both).prepare(
        ENVIRONMENT, environment_spec(ENVIRONMENT), [(wanted, str(folder))]
    )
    again = await fleet_of(client, both).prepare(
        ENVIRONMENT, environment_spec(ENVIRONMENT), [(wanted, str(folder))]
    )

    assert first[f"loaded.{name}"] == "2 replicas, 0 already warm"
    assert again[f"loaded.{name}"] == "2 replicas, 2 already warm"
    for replica in both:
        assert name in await listed(client, replica)


async def test_a_replica_serving_another_base_stops_the_rollout_before_anything_loads(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders
) -> None:
    good, other = replicas["open"], replicas["elsewhere"]
    wanted = manifest("chat", revision())
    name = lora_name(wanted.adapter, wanted.revision)

    with pytest.raises(RolloutStopped) as stopped:
        await fleet_of(client, [good, other]).prepare(
            ENVIRONMENT, environment_spec(ENVIRONMENT), [(wanted, str(adapters()))]
        )

    assert stopped.value.evidence["stopped_by"] == "contract"
    assert f"serves '{other.base_id}' from '{other.base_folder}'" in str(stopped.value)
    assert f"not the environment's base '{good.base_id}'" in str(stopped.value)
    assert name not in await listed(client, good) | await listed(client, other)


async def test_a_context_length_other_than_the_environments_stops_the_rollout(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders
) -> None:
    wanted = manifest("chat", revision())

    with pytest.raises(RolloutStopped, match="a context of 64 tokens, the environment's is 4096"):
        await fleet_of(client, [replicas["open"]]).prepare(
            ENVIRONMENT,
            environment_spec(ENVIRONMENT, max_model_len=4096),
            [(wanted, str(adapters()))],
        )


async def test_replicas_without_runtime_lora_updating_stop_the_rollout_with_the_fix(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders
) -> None:
    wanted = manifest("chat", revision())

    with pytest.raises(RolloutStopped) as stopped:
        await fleet_of(client, [replicas["open"], replicas["frozen"]]).prepare(
            ENVIRONMENT, environment_spec(ENVIRONMENT), [(wanted, str(adapters()))]
        )

    assert stopped.value.evidence["stopped_by"] == "load"
    failures = stopped.value.evidence["failures"]
    assert replicas["frozen"].url in failures and replicas["open"].url not in failures
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in failures


async def test_an_adapter_the_replicas_refuse_stops_the_rollout_with_vllms_reason(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders
) -> None:
    wanted = manifest("chat", revision())
    name = lora_name(wanted.adapter, wanted.revision)

    with pytest.raises(RolloutStopped) as stopped:
        await fleet_of(client, [replicas["open"]]).prepare(
            ENVIRONMENT, environment_spec(ENVIRONMENT), [(wanted, str(adapters(rank=64)))]
        )

    assert stopped.value.evidence["stopped_by"] == "load"
    assert "LoRA rank 64 is greater than max_lora_rank 8" in stopped.value.evidence["failures"]
    assert name not in await listed(client, replicas["open"])


async def test_stock_vllm_replicas_refuse_a_canary_share_they_cannot_apply(
    replicas: dict[str, Replica], client: httpx.AsyncClient
) -> None:
    with pytest.raises(RolloutStopped) as stopped:
        await fleet_of(client, [replicas["open"], replicas["keyed"]]).check_routing(ENVIRONMENT, 20)

    assert stopped.value.evidence["stopped_by"] == "routing"
    assert replicas["keyed"].url in stopped.value.evidence["takes_no_routing"]


async def test_pruning_unloads_the_adapters_revisions_nothing_serves(
    replicas: dict[str, Replica], client: httpx.AsyncClient, adapters: Folders
) -> None:
    both = [replicas["open"], replicas["keyed"]]
    adapter = f"prune-{revision()[-8:]}"
    revisions = [manifest(adapter, revision()) for _ in range(2)]
    fleet = fleet_of(client, both)
    await fleet.prepare(
        ENVIRONMENT, environment_spec(ENVIRONMENT), [(m, str(adapters())) for m in revisions]
    )

    await fleet.prune(ENVIRONMENT, adapter)  # no pointer: nothing serves, nothing waits

    for replica in both:
        assert not {n for n in await listed(client, replica) if n.startswith(f"{adapter}@")}
