"""The activator's environment commands (`adapterctl env replicas|analysis`): each sets the
activator's own state and records an answer under the command's id; a refused one records
the refusal (the HTTP API answers it 409)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from services.activator.commands import on_set_canary_analysis, on_set_replicas
from services.activator.plans import Outcome, RequestAction
from shared.events import Actor, CommandHeader, SetCanaryAnalysis, SetReplicas
from shared.kafka.dispatch import PermanentError
from tests.fakes.activator import ActivatorWorld, environment_spec
from tests.samples import header

ENV = "production"


@pytest.fixture
def world(tmp_path: Path) -> ActivatorWorld:
    return ActivatorWorld(tmp_path, environment_spec(ENV, canary_steps=(10, 50, 100)))


def env_header(environment: str = ENV, role: str = "operator") -> CommandHeader:
    return header(
        "env",
        command_id=str(uuid.uuid4()),
        adapter="",
        environment=environment,
        actor=Actor(principal="olivia", role=role),
    )


def replicas(*urls: str, environment: str = ENV, role: str = "operator") -> SetReplicas:
    return SetReplicas(header=env_header(environment, role), urls=list(urls))


def analysis(**settings: str) -> SetCanaryAnalysis:
    return SetCanaryAnalysis(header=env_header(), settings=settings)


def answer(world: ActivatorWorld, command: SetReplicas | SetCanaryAnalysis) -> dict[str, object]:
    return dict(world.store.outcomes[command.header.command_id])


async def test_set_replicas_makes_the_list_exactly_the_urls_given(world: ActivatorWorld) -> None:
    command = replicas("http://a:8000/", "http://b:8000")
    await on_set_replicas(command, world.deps)
    assert await world.store.replicas(ENV) == ["http://a:8000", "http://b:8000"]
    found = answer(world, command)
    assert (found["outcome"], found["action"]) == (Outcome.COMMITTED, RequestAction.SET_REPLICAS)
    assert found["adapter"] == "" and "2 replica(s)" in str(found["detail"])


async def test_an_empty_list_removes_every_replica(world: ActivatorWorld) -> None:
    await on_set_replicas(replicas(), world.deps)
    assert await world.store.replicas(ENV) == []


async def test_a_redelivered_set_replicas_changes_nothing(world: ActivatorWorld) -> None:
    command = replicas("http://a:8000")
    await on_set_replicas(command, world.deps)
    await world.store.set_replicas(ENV, ["http://c:8000"])  # a later command, answered since
    await on_set_replicas(command, world.deps)
    assert await world.store.replicas(ENV) == ["http://c:8000"]


@pytest.mark.parametrize(
    ("command", "refusal"),
    [
        (lambda: replicas("ftp://a"), "not an http"),
        (lambda: replicas("http://a", "http://a/"), "named twice"),
        (lambda: replicas("http://a", environment="nowhere"), "no environment 'nowhere'"),
        (lambda: replicas("http://a", role="approver"), "not an operator"),
    ],
)
async def test_a_replica_list_that_cannot_be_is_refused_and_the_refusal_recorded(
    world: ActivatorWorld, command: Callable[[], SetReplicas], refusal: str
) -> None:
    sent = command()
    before = await world.store.replicas(ENV)
    with pytest.raises(PermanentError, match=refusal):
        await on_set_replicas(sent, world.deps)
    assert answer(world, sent)["outcome"] == Outcome.REFUSED
    assert await world.store.replicas(ENV) == before


async def test_analysis_settings_merge_key_by_key(world: ActivatorWorld) -> None:
    await on_set_canary_analysis(analysis(min_samples="200"), world.deps)
    second = analysis(max_error_rate="0.05")
    await on_set_canary_analysis(second, world.deps)
    stored = await world.store.analysis_settings(ENV)
    assert stored == {"min_samples": 200, "max_error_rate": 0.05}  # as the policy reads them
    assert answer(world, second)["outcome"] == Outcome.COMMITTED


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [({"min_samples": "many"}, "invalid literal"), ({"no_such_knob": "1"}, "unknown")],
)
async def test_analysis_settings_the_policy_cannot_take_are_refused(
    world: ActivatorWorld, settings: dict[str, str], refusal: str
) -> None:
    command = analysis(**settings)
    with pytest.raises(PermanentError, match=refusal):
        await on_set_canary_analysis(command, world.deps)
    assert answer(world, command)["outcome"] == Outcome.REFUSED
    assert await world.store.analysis_settings(ENV) == {}
