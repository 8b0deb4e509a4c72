"""The archiver as its own process, killed right after each step and restarted: it always
ends with one verified archive, the weights gone, and the kept revisions untouched.

Revisions are put into the private registry and artifact store in-process; the archiver
process sweeps them (a faust timer), publishes through its outbox relay, and is driven
to crash by `ARCHIVER_CRASH_AFTER`, which ends it with `os._exit` after that step."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.archiver.faults import CRASH_EXIT, CRASH_POINTS
from shared.events import WeightsDeleted
from shared.lifecycle import State
from tests.conftest import Infra
from tests.eventually import eventually, eventually_async
from tests.integration.test_archiver import World, make_world
from tests.stack import ServiceDied, Stack

# What the registry, cold storage and artifact store show right after each crash.
AFTER_CRASH = {
    # point: (revision track, archive written, weights still there)
    "expired": (State.EXPIRED, False, True),
    "archived": (State.EXPIRED, True, True),
    "verified": (State.EXPIRED, True, True),
    "recorded": (State.ARCHIVED, True, True),
    "deleted": (State.ARCHIVED, True, False),
}


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    stack = Stack(infra, tmp_path_factory.mktemp("archiver-process"))
    await stack.create()
    world = await make_world(stack, stack.root)
    yield world
    stack.stop()
    await world.registry.close()


def _start(world: World, **extra: str) -> subprocess.Popen[bytes]:
    # A restarted worker joins the consumer group only once the crashed member's session
    # has expired (faust's default: 60 s); faust reads these two from the environment.
    return world.stack.start(
        "archiver",
        COLD_STORAGE_URL=str(world.stack.root / "cold"),
        ARCHIVER_SWEEP_INTERVAL_S="1",
        BROKER_SESSION_TIMEOUT="8",
        BROKER_HEARTBEAT_INTERVAL="1",
        **extra,
    )


async def _wait_for_state(
    world: World, adapter: str, revision: str, state: State, timeout_s: float = 90
) -> None:
    async def reached() -> bool:
        if world.stack.processes["archiver"].poll() is not None:
            raise ServiceDied(f"archiver died:\n{world.stack.log_of('archiver')}")
        return await world.state(adapter, revision) is state

    try:
        await eventually_async(reached, timeout=timeout_s, interval=0.2)
    except AssertionError:
        log = world.stack.log_of("archiver")
        raise AssertionError(f"{adapter}@{revision} never reached {state}:\n{log}") from None


def _archives(world: World, adapter: str) -> list[Path]:
    folder = world.stack.root / "cold" / adapter
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.faults
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_an_archiver_killed_after_each_step_finishes_correctly_on_restart(
    world: World, unique: Callable[[str], str], point: str
) -> None:
    adapter, env = unique(f"crash-{point}"), unique("prod")
    await world.set_policy(env, keep=0)  # before the archiver runs: in its table directly
    old, target, active = [await world.add(adapter) for _ in range(3)]
    for revision in (old, target, active):
        await world.activate(adapter, revision, env)

    crashed = _start(world, ARCHIVER_CRASH_AFTER=point)
    try:
        code = crashed.wait(timeout=120)
    except subprocess.TimeoutExpired:
        crashed.kill()
        raise AssertionError(f"no crash after {point}:\n{world.stack.log_of('archiver')}") from None
    assert code == CRASH_EXIT, world.stack.log_of("archiver")
    track, archived, weights = AFTER_CRASH[point]
    assert await world.state(adapter, old) is track
    assert bool(_archives(world, adapter)) is archived
    assert world.weights_present(adapter, old) is weights
    if not weights:
        assert world.weights_gone(adapter, old)

    _start(world)
    try:
        await _wait_for_state(world, adapter, old, State.DELETED)
        events = world.stack.wait_for(
            lambda evs: any(isinstance(e, WeightsDeleted) for e in evs), adapter=adapter
        )
    finally:
        world.stack.stop()

    types = await world.event_types(adapter, old)
    assert types[-3:] == ["RevisionExpired", "ManifestArchived", "WeightsDeleted"], types
    assert types.count("ManifestArchived") == 1 and types.count("WeightsDeleted") == 1
    assert len(_archives(world, adapter)) == 1  # never a second archive with other bytes
    await world.archive_of(adapter, old)  # reads back and verifies
    assert world.weights_gone(adapter, old)
    [deleted] = [e for e in events if isinstance(e, WeightsDeleted)]
    sizes = [len(d) for d in world.contents[old].values()]
    assert (deleted.file_count, deleted.bytes_freed) == (len(sizes), sum(sizes))
    for kept in (target, active):
        assert await world.state(adapter, kept) is State.VALIDATED
        assert world.weights_present(adapter, kept)


async def test_the_timer_applies_a_policy_set_while_running_and_adapterctl_reads_the_archive(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("cli"), unique("prod")
    old, target, active = [await world.add(adapter) for _ in range(3)]
    for revision in (old, target, active):
        await world.activate(adapter, revision, env)
    log = world.stack.root / "archiver.log"
    seen = log.stat().st_size if log.exists() else 0
    _start(world)
    try:
        eventually(
            lambda: "archiver_ready" in log.read_text()[seen:],
            timeout=90,
            message=world.stack.log_of("archiver"),
        )
        time.sleep(2)  # two ticks: without a policy for the environment nothing expires
        assert await world.state(adapter, old) is State.VALIDATED
        # A policy is no lifecycle event: only the timer's next sweep can act on it. The
        # command waits for the archiver's answer, read from its API.
        world.stack.adapterctl(
            "retention", "set", "--environment", env, "--adapter", adapter,
            "--keep-superseded", "0", "--min-age-days", "0",
        )  # fmt: skip
        await _wait_for_state(world, adapter, old, State.DELETED)
    finally:
        world.stack.stop()
    # Each log line is faust's prefix, then structlog's JSON.
    sweeps = [
        json.loads(line[line.index("{") :])
        for line in log.read_text()[seen:].splitlines()
        if '"sweep_done"' in line
    ]
    assert any(s["adapter"] is None and s["expired"] == 1 for s in sweeps), sweeps

    shown = world.stack.adapterctl("archive", "show", old, "--adapter", adapter)
    assert "verified    yes" in shown.stdout and "adapter_model.safetensors" in shown.stdout
    assert "superseded in" in shown.stdout  # the expiry's reason
    restored = world.stack.root / "restored" / adapter
    for name, data in world.contents[old].items():
        (restored / name).parent.mkdir(parents=True, exist_ok=True)
        (restored / name).write_bytes(data)
    ok = world.stack.adapterctl(
        "archive", "verify", old, "--adapter", adapter, "--weights", str(restored)
    )
    assert ok.returncode == 0 and ok.stdout.rstrip().endswith(f"{adapter}@{old}")

    (restored / "adapter_model.safetensors").write_bytes(b"not the archived weights")
    bad = world.stack.adapterctl(
        "archive", "verify", old, "--adapter", adapter, "--weights", str(restored), check=False
    )
    assert bad.returncode == 1 and "MISMATCH  adapter_model.safetensors" in bad.stdout
    kept = world.stack.adapterctl("archive", "show", target, "--adapter", adapter, check=False)
    assert (
        kept.returncode == 1 and "is not archived: its revision track is validated" in kept.stderr
    )
