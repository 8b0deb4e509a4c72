"""What must stop the archiver, against the real registry: a rollback to a revision that is
gone, a stale expiry, a second archiver, a tampered archive, a squatted archive key and
weights that rotted in the store. Nothing is deleted without a verified archive."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

import pytest

from services.archiver.handlers import sweep
from services.archiver.pipeline import ArchiveNotVerified, complete, expire
from shared.coldstore.record import archive_key
from shared.events import RevisionActivated, RevisionQuarantined
from shared.lifecycle import InvalidTransition, State
from shared.retention import RollbackRefused
from tests.conftest import Infra
from tests.factories import lifecycle
from tests.integration.test_archiver import World, decide_one, make_world
from tests.stack import Stack


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    stack = Stack(infra, tmp_path_factory.mktemp("archiver-safety"))
    await stack.create()
    world = await make_world(stack, stack.root)
    yield world
    await world.registry.close()


async def test_rolling_back_to_an_archived_revision_is_refused_with_a_message_that_says_so(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("no-return"), unique("prod")
    await world.set_policy(env, keep=0)
    first, second, third = [await world.add(adapter) for _ in range(3)]
    for revision in (first, second, third):
        await world.activate(adapter, revision, env)
    await sweep(world.deps(), adapter)
    assert await world.state(adapter, first) is State.DELETED

    with pytest.raises(RollbackRefused, match="archived and its weights were deleted") as refused:
        await world.rollback_to(adapter, first, env)
    assert f"adapterctl archive show {first} --adapter {adapter}" in str(refused.value)
    # The registry refuses on its own too: an expired revision never serves or is pointed at.
    with pytest.raises(InvalidTransition, match="revision track is validated, not deleted"):
        await world.commit(lifecycle(RevisionActivated, adapter, first, env))
    pointer = await world.registry.pointer(adapter, env)
    assert first not in (pointer.active, pointer.canary, pointer.rollback_target)
    await world.rollback_to(adapter, second, env)  # the rollback target is still there
    assert (await world.registry.pointer(adapter, env)).active == second


async def test_an_expiry_decided_before_the_revision_became_the_rollback_target_loses(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("stale"), unique("prod")
    await world.set_policy(env, keep=0)
    first, second, third = [await world.add(adapter) for _ in range(3)]
    for revision in (first, second, third):
        await world.activate(adapter, revision, env)
    stale = await world.registry.revision(adapter, first)
    assert stale is not None  # a sweep reads `first`: superseded, named by no pointer
    await world.rollback_to(adapter, first, env)  # meanwhile an operator restores it ...
    await world.activate(adapter, await world.add(adapter), env)  # ... and moves on

    assert (await world.registry.pointer(adapter, env)).rollback_target == first
    assert not await expire(world.deps(), decide_one(adapter, first, stale.version))
    assert await world.state(adapter, first) is State.VALIDATED
    assert world.weights_present(adapter, first)


async def test_two_archivers_finishing_the_same_revision_write_one_archive_and_one_deletion(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter = unique("twins")
    revision = await world.add(adapter)
    record = await world.registry.revision(adapter, revision)
    assert record is not None
    assert await expire(world.deps(), decide_one(adapter, revision, record.version))

    results = await asyncio.gather(
        complete(world.deps(), adapter, revision),
        complete(world.deps(), adapter, revision),
        return_exceptions=True,
    )

    assert await world.state(adapter, revision) is State.DELETED, results
    types = await world.event_types(adapter, revision)
    assert types.count("ManifestArchived") == 1 and types.count("WeightsDeleted") == 1
    archives = list((world.stack.root / "cold" / adapter).iterdir())
    assert len(archives) == 1


class Halt(Exception):
    """Stands in for a crash in-process: the pipeline stops right after the named step."""


def halt_after(point: str) -> Callable[[str], None]:
    def crash(step: str) -> None:
        if step == point:
            raise Halt(step)

    return crash


async def _expired(world: World, adapter: str) -> str:
    revision = await world.add(adapter)
    record = await world.registry.revision(adapter, revision)
    assert record is not None
    assert await expire(world.deps(), decide_one(adapter, revision, record.version))
    return revision


async def test_an_archive_that_no_longer_verifies_stops_the_deletion_of_the_weights(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter = unique("tampered")
    revision = await _expired(world, adapter)
    deps = world.deps()
    deps.crash = halt_after("recorded")
    with pytest.raises(Halt):
        await complete(deps, adapter, revision)
    [path] = (world.stack.root / "cold" / adapter).iterdir()
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"tiny-llama"', b'"tiny-llamb"'))

    with pytest.raises(ArchiveNotVerified, match="record digest is"):
        await complete(world.deps(), adapter, revision)
    assert await world.state(adapter, revision) is State.ARCHIVED
    assert world.weights_present(adapter, revision)


async def test_a_different_object_already_at_the_archive_key_is_never_replaced(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter = unique("squatted")
    revision = await _expired(world, adapter)
    world.cold.put(archive_key(adapter, revision), b"someone else's bytes")

    report = await sweep(world.deps(), adapter)

    assert "ArchiveConflict" in report.failed[(adapter, revision)]
    assert world.cold.read(world.cold.uri_for(archive_key(adapter, revision))) == (
        b"someone else's bytes"
    )
    assert await world.state(adapter, revision) is State.EXPIRED
    assert world.weights_present(adapter, revision)


async def test_stored_weights_that_no_longer_match_their_manifest_are_quarantined_on_the_log(
    world: World, unique: Callable[[str], str]
) -> None:
    """Not archived as if they matched, and not stuck retrying either (issue #16): the
    change is committed as RevisionQuarantined, the archive keeps the manifest's hashes and
    lists the quarantine, and the way out ends."""
    adapter = unique("rotten")
    revision = await _expired(world, adapter)
    blob = world.store.blob_path(
        hashlib.sha256(world.contents[revision]["adapter_model.safetensors"]).hexdigest()
    )
    blob.chmod(0o644)
    with blob.open("r+b") as f:
        f.write(b"\0")

    assert await complete(world.deps(), adapter, revision) is State.DELETED
    [quarantine] = await world.registry.events(adapter, revision, types=(RevisionQuarantined,))
    assert isinstance(quarantine, RevisionQuarantined)
    assert quarantine.detected_by == "archiver"
    assert [f.evidence["path"] for f in quarantine.findings] == ["adapter_model.safetensors"]
    assert not blob.exists()
