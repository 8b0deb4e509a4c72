"""The registry guards every transition in PostgreSQL and appends it to the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from shared.codec import Codec
from shared.events import (
    RevisionActivated,
    RevisionEvaluated,
    RevisionExpired,
    RevisionRolledBack,
    RevisionSuperseded,
)
from shared.lifecycle import InvalidTransition, State
from shared.pointers import EnvironmentPointer
from shared.registry.store import ConcurrentTransition, Registry, Step
from tests.conftest import Infra
from tests.factories import lifecycle, to_active, to_approved, to_validated
from tests.integration.conftest import create_database


@pytest.fixture(scope="session")
async def registry(infra: Infra) -> AsyncIterator[Registry]:
    reg = await Registry.connect(await create_database(infra), Codec.from_env(), max_size=10)
    yield reg
    await reg.close()


async def _commit_all(registry: Registry, events: list[object]) -> None:
    for event in events:
        await registry.transition(event)  # type: ignore[arg-type]


async def test_a_racing_pair_on_one_revision_yields_one_winner_and_one_concurrent_transition(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("race")
    await _commit_all(registry, to_validated(adapter, "r1"))
    record = await registry.revision(adapter, "r1")
    assert record is not None

    results = await asyncio.gather(
        registry.transition(lifecycle(RevisionEvaluated, adapter, "r1", "prod"), record.version),
        registry.transition(lifecycle(RevisionExpired, adapter, "r1"), record.version),
        return_exceptions=True,
    )

    losers = [r for r in results if isinstance(r, Exception)]
    assert len(losers) == 1 and isinstance(losers[0], ConcurrentTransition), results
    after = await registry.revision(adapter, "r1")
    assert after is not None and after.version == record.version + 1


async def test_an_illegal_transition_is_refused_and_leaves_no_trace(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("illegal")
    await _commit_all(registry, to_validated(adapter, "r1"))
    with pytest.raises(InvalidTransition):
        await registry.transition(lifecycle(RevisionActivated, adapter, "r1", "prod"))
    record = await registry.revision(adapter, "r1")
    assert record is not None and record.version == 2
    assert record.status.track("prod") is State.VALIDATED
    seqs = await registry.pool.fetch("SELECT seq FROM outbox WHERE adapter = $1", adapter)
    assert sorted(r["seq"] for r in seqs) == [1, 2]


async def test_each_commit_extends_the_adapters_chain_with_gapless_seq(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("chain")
    events = [*to_active(adapter, "r1", "prod"), *to_validated(adapter, "r2")]
    sealed = []
    for event in events:
        sealed.extend((await registry.transition(event)).events)
    assert [e.envelope.seq for e in sealed] == list(range(1, len(events) + 1))
    assert [e.envelope.prev_hash for e in sealed] == ["", *[e.envelope.hash for e in sealed[:-1]]]
    rows = await registry.pool.fetch(
        "SELECT payload FROM outbox WHERE adapter = $1 ORDER BY seq", adapter
    )
    assert [registry.codec.decode(bytes(r["payload"])) for r in rows] == sealed


async def test_activation_and_rollback_move_the_environment_pointer_atomically(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("pointer")
    await _commit_all(registry, to_active(adapter, "r1", "prod"))
    await _commit_all(registry, to_approved(adapter, "r2", "prod"))
    await registry.commit(
        [
            Step(lifecycle(RevisionSuperseded, adapter, "r1", "prod", superseded_by="r2")),
            Step(lifecycle(RevisionActivated, adapter, "r2", "prod", previous_revision="r1")),
        ]
    )
    assert await registry.pointer(adapter, "prod") == EnvironmentPointer(
        active="r2", rollback_target="r1"
    )

    await registry.commit(
        [
            Step(lifecycle(RevisionRolledBack, adapter, "r2", "prod", restored_revision="r1")),
            Step(lifecycle(RevisionActivated, adapter, "r1", "prod", reason="rollback")),
        ]
    )
    assert (await registry.pointer(adapter, "prod")).active == "r1"


async def test_a_failed_step_rolls_back_the_whole_commit(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("atomic")
    await _commit_all(registry, to_active(adapter, "r1", "prod"))
    with pytest.raises(InvalidTransition):
        await registry.commit(
            [
                Step(lifecycle(RevisionSuperseded, adapter, "r1", "prod", superseded_by="r9")),
                Step(lifecycle(RevisionActivated, adapter, "r9", "prod")),  # r9 unknown
            ]
        )
    assert (await registry.pointer(adapter, "prod")).active == "r1"
    record = await registry.revision(adapter, "r1")
    assert record is not None and record.status.track("prod") is State.ACTIVE


async def test_a_redelivered_event_is_recognised_and_changes_nothing(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("redeliver")
    [registered, validated] = to_validated(adapter, "r1")
    await registry.transition(registered)
    inbox = ("validator", registered.envelope.event_id)
    first = await registry.commit([Step(validated)], inbox=inbox)
    again = await registry.commit([Step(validated)], inbox=inbox)
    same_id = await registry.commit([Step(validated)])
    assert not first.duplicate and again.duplicate and same_id.duplicate
    record = await registry.revision(adapter, "r1")
    assert record is not None and record.version == 2


async def test_a_rollback_claiming_a_restore_the_pointer_does_not_show_is_refused(
    registry: Registry, unique: Callable[[str], str]
) -> None:
    adapter = unique("restore")
    await _commit_all(registry, to_active(adapter, "r1", "prod"))
    await _commit_all(registry, to_approved(adapter, "r2", "prod"))
    await registry.commit(
        [
            Step(lifecycle(RevisionSuperseded, adapter, "r1", "prod", superseded_by="r2")),
            Step(lifecycle(RevisionActivated, adapter, "r2", "prod", previous_revision="r1")),
        ]
    )
    with pytest.raises(InvalidTransition, match="claims to restore r1"):
        await registry.commit(
            [Step(lifecycle(RevisionRolledBack, adapter, "r2", "prod", restored_revision="r1"))]
        )
    assert (await registry.pointer(adapter, "prod")).active == "r2", "nothing was committed"
