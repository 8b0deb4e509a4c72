"""A rollback racing an expiry, against the real registry, a hundred times in a row: one
writer wins cleanly and no pointer ever names a revision whose weights are gone."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from services.archiver.handlers import sweep
from services.archiver.pipeline import complete, expire
from shared.lifecycle import InvalidTransition, State
from shared.registry.store import ConcurrentTransition
from shared.retention import RollbackRefused
from tests.conftest import Infra
from tests.integration.test_archiver import World, decide_one, make_world
from tests.stack import Stack

ROUNDS = 100
LOSSES = (ConcurrentTransition, InvalidTransition, RollbackRefused)


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    stack = Stack(infra, tmp_path_factory.mktemp("race"))
    await stack.create()
    world = await make_world(stack, stack.root)
    yield world
    await world.registry.close()


async def _jitter(rng: random.Random) -> None:
    for _ in range(rng.randrange(4)):
        await asyncio.sleep(0)


async def _three_releases(world: World, adapter: str, env: str) -> list[str]:
    """r1, r2, r3 activated in turn: r3 active, r2 the rollback target, r1 superseded."""
    revisions = [await world.add(adapter) for _ in range(3)]
    for revision in revisions:
        await world.activate(adapter, revision, env)
    return revisions


async def _assert_pointers_name_only_addressable_revisions(
    world: World, adapter: str, env: str
) -> None:
    pointer = await world.registry.pointer(adapter, env)
    for named in (pointer.active, pointer.canary, pointer.rollback_target):
        if named is not None:
            assert await world.state(adapter, named) is State.VALIDATED, (named, pointer)
            assert world.weights_present(adapter, named), (named, pointer)


async def _archive(
    world: World, rng: random.Random, adapter: str, revision: str, version: int
) -> bool:
    """The archiver's way: expire on the version it read, then archive and delete."""
    # The rollback reads the registry three times before it commits: a head start of up to
    # a few round trips lets either writer win.
    await asyncio.sleep(rng.uniform(0, 0.004))
    if not await expire(world.deps(), decide_one(adapter, revision, version)):
        return False
    await complete(world.deps(), adapter, revision)
    return True


async def _restore(world: World, rng: random.Random, adapter: str, target: str, env: str) -> bool:
    """The activator's way: check the target, then one compare-and-set commit."""
    await _jitter(rng)
    await world.rollback_to(adapter, target, env)
    return True


async def _sweep(world: World, rng: random.Random, adapter: str) -> None:
    await _jitter(rng)
    await sweep(world.deps(), adapter)


async def test_a_rollback_racing_the_expiry_of_its_target_ends_with_exactly_one_winner(
    world: World, unique: Callable[[str], str]
) -> None:
    env, rng = unique("prod"), random.Random(20261130)
    await world.set_policy(env, keep=0)
    outcomes = {"rollback": 0, "expiry": 0}
    for round_ in range(ROUNDS):
        adapter = unique(f"race{round_}")
        r1, _, r3 = await _three_releases(world, adapter, env)
        read = await world.registry.revision(adapter, r1)
        assert read is not None  # the archiver read r1 here: superseded, no pointer names it

        expired, restored = await asyncio.gather(
            _archive(world, rng, adapter, r1, read.version),
            _restore(world, rng, adapter, r1, env),
            return_exceptions=True,
        )

        if restored is True:
            assert expired is False, (round_, expired)
            assert (await world.registry.pointer(adapter, env)).active == r1
            outcomes["rollback"] += 1
        else:
            assert isinstance(restored, LOSSES), (round_, restored)
            assert expired is True, (round_, expired)
            assert await world.state(adapter, r1) is State.DELETED
            assert (await world.registry.pointer(adapter, env)).active == r3
            outcomes["expiry"] += 1
        await sweep(world.deps(), adapter)  # whatever the policy now lets go, goes
        await _assert_pointers_name_only_addressable_revisions(world, adapter, env)
    assert sum(outcomes.values()) == ROUNDS, outcomes
    print(f"winners over {ROUNDS} rounds: {outcomes}")


async def test_a_sweep_racing_a_rollback_to_the_rollback_target_never_deletes_it(
    world: World, unique: Callable[[str], str]
) -> None:
    env, rng = unique("prod"), random.Random(7)
    await world.set_policy(env, keep=0)
    for round_ in range(ROUNDS):
        adapter = unique(f"sweep{round_}")
        r1, r2, _ = await _three_releases(world, adapter, env)
        swept, rolled = await asyncio.gather(
            _sweep(world, rng, adapter),
            _restore(world, rng, adapter, r2, env),
            return_exceptions=True,
        )

        assert swept is None and rolled is True, (round_, swept, rolled)
        assert (await world.registry.pointer(adapter, env)).active == r2
        assert await world.state(adapter, r2) is State.VALIDATED
        assert world.weights_present(adapter, r2)
        assert await world.state(adapter, r1) is State.DELETED
        await _assert_pointers_name_only_addressable_revisions(world, adapter, env)
