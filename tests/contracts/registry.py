"""The registry's contract: one suite, run against PostgreSQL (tests/integration) and memory
(tests/unit). A subclass provides the `registry` fixture; every scenario uses fresh names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared.events import (
    RevisionActivated,
    RevisionEvaluated,
    RevisionExpired,
    RevisionRegistered,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.lifecycle import InvalidTransition, State
from shared.pointers import EnvironmentPointer
from shared.registry.port import ConcurrentTransition, Registry, Step, pointers_naming
from tests.factories import lifecycle, to_active, to_approved, to_validated


async def _commit_all(registry: Registry, events: list[Any]) -> None:
    for event in events:
        await registry.transition(event)


async def _activate_second(registry: Registry, adapter: str) -> None:
    """r1 active in prod, then r2 approved and activated in its place."""
    await _commit_all(registry, to_active(adapter, "r1", "prod"))
    await _commit_all(registry, to_approved(adapter, "r2", "prod"))
    await registry.commit(
        [
            Step(lifecycle(RevisionSuperseded, adapter, "r1", "prod", superseded_by="r2")),
            Step(lifecycle(RevisionActivated, adapter, "r2", "prod", previous_revision="r1")),
        ]
    )


class RegistryContract:
    """What every `Registry` implementation does; subclasses supply the `registry` fixture."""

    async def test_a_racing_pair_on_one_revision_yields_one_winner_and_one_concurrent_transition(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("race")
        await _commit_all(registry, to_validated(adapter, "r1"))
        record = await registry.revision(adapter, "r1")
        assert record is not None

        results = await asyncio.gather(
            registry.transition(
                lifecycle(RevisionEvaluated, adapter, "r1", "prod"), record.version
            ),
            registry.transition(lifecycle(RevisionExpired, adapter, "r1"), record.version),
            return_exceptions=True,
        )

        losers = [r for r in results if isinstance(r, Exception)]
        assert len(losers) == 1 and isinstance(losers[0], ConcurrentTransition), results
        after = await registry.revision(adapter, "r1")
        assert after is not None and after.version == record.version + 1

    async def test_an_illegal_transition_is_refused_and_leaves_no_trace(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("illegal")
        await _commit_all(registry, to_validated(adapter, "r1"))
        with pytest.raises(InvalidTransition):
            await registry.transition(lifecycle(RevisionActivated, adapter, "r1", "prod"))
        record = await registry.revision(adapter, "r1")
        assert record is not None and record.version == 2
        assert record.status.track("prod") is State.VALIDATED
        assert [e.envelope.seq for e in await registry.events(adapter)] == [1, 2]

    async def test_each_commit_extends_the_adapters_chain_with_gapless_seq(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("chain")
        events = [*to_active(adapter, "r1", "prod"), *to_validated(adapter, "r2")]
        sealed = []
        for event in events:
            sealed.extend((await registry.transition(event)).events)
        assert [e.envelope.seq for e in sealed] == list(range(1, len(events) + 1))
        assert [e.envelope.prev_hash for e in sealed] == [
            "",
            *[e.envelope.hash for e in sealed[:-1]],
        ]
        assert await registry.events(adapter) == sealed, "the outbox holds what was sealed"

    async def test_events_are_read_back_per_revision_and_per_type_in_seq_order(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("events")
        await _commit_all(registry, [*to_validated(adapter, "r1"), *to_validated(adapter, "r2")])
        r2 = await registry.events(adapter, "r2")
        assert [type(e) for e in r2] == [RevisionRegistered, RevisionValidated]
        assert [e.envelope.seq for e in r2] == [3, 4]
        registered = await registry.events(adapter, types=(RevisionRegistered,))
        assert [e.envelope.revision for e in registered] == ["r1", "r2"]
        assert await registry.events(unique("nobody")) == []

    async def test_activation_and_rollback_move_the_environment_pointer_atomically(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("pointer")
        await _activate_second(registry, adapter)
        assert await registry.pointer(adapter, "prod") == EnvironmentPointer(
            active="r2", rollback_target="r1"
        )
        assert await registry.pointers(adapter) == {
            (adapter, "prod"): EnvironmentPointer(active="r2", rollback_target="r1")
        }

        await registry.commit(
            [
                Step(lifecycle(RevisionRolledBack, adapter, "r2", "prod", restored_revision="r1")),
                Step(lifecycle(RevisionActivated, adapter, "r1", "prod", reason="rollback")),
            ]
        )
        assert (await registry.pointer(adapter, "prod")).active == "r1"
        assert pointers_naming(await registry.pointers(adapter), adapter, "r2") == []
        assert pointers_naming(await registry.pointers(adapter), adapter, "r1") == ["prod"]

    async def test_a_failed_step_rolls_back_the_whole_commit(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("atomic")
        await _commit_all(registry, to_active(adapter, "r1", "prod"))
        before = await registry.events(adapter)
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
        assert await registry.events(adapter) == before
        more = await registry.transition(lifecycle(RevisionRegistered, adapter, "r3"))
        assert more.events[0].envelope.seq == len(before) + 1, "no seq was consumed"

    async def test_a_redelivered_event_is_recognised_and_changes_nothing(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("redeliver")
        [registered, validated] = to_validated(adapter, "r1")
        await registry.transition(registered)
        inbox = ("validator", registered.envelope.event_id)
        assert not await registry.handled(*inbox)
        first = await registry.commit([Step(validated)], inbox=inbox)
        again = await registry.commit([Step(validated)], inbox=inbox)
        same_id = await registry.commit([Step(validated)])
        assert not first.duplicate and again.duplicate and same_id.duplicate
        assert await registry.handled(*inbox)
        record = await registry.revision(adapter, "r1")
        assert record is not None and record.version == 2

    async def test_recording_a_handled_event_succeeds_once(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        event_id = unique("event")
        assert await registry.record_handled("archiver", event_id)
        assert not await registry.record_handled("archiver", event_id)
        assert not await registry.handled("validator", event_id), "inboxes are per consumer"

    async def test_a_rollback_claiming_a_restore_the_pointer_does_not_show_is_refused(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("restore")
        await _activate_second(registry, adapter)
        with pytest.raises(InvalidTransition, match="claims to restore r1"):
            await registry.commit(
                [Step(lifecycle(RevisionRolledBack, adapter, "r2", "prod", restored_revision="r1"))]
            )
        assert (await registry.pointer(adapter, "prod")).active == "r2", "nothing was committed"

    async def test_revisions_are_listed_by_revision_track_least_recently_moved_first(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("tracks")
        await _commit_all(registry, to_validated(adapter, "r1"))
        await _commit_all(registry, to_validated(adapter, "r2"))
        await registry.transition(lifecycle(RevisionExpired, adapter, "r1"))
        await registry.transition(lifecycle(RevisionRegistered, adapter, "r3"))

        validated = await registry.revisions(tracks=[State.VALIDATED], adapter=adapter)
        assert [r.revision for r in validated] == ["r2"]
        every = await registry.revisions(adapter=adapter)
        assert [r.revision for r in every] == ["r2", "r1", "r3"]
        assert all(r.created_at is not None and r.updated_at is not None for r in every)
        assert await registry.revisions(tracks=[State.DELETED], adapter=adapter) == []

    async def test_a_registered_revision_keeps_its_manifest_digest_and_submitter(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("facts")
        [registered, validated] = to_validated(adapter, "r1")
        await _commit_all(registry, [registered, validated])
        record = await registry.revision(adapter, "r1")
        assert record is not None
        assert record.manifest_digest == registered.manifest_digest
        assert record.submitter == registered.submitter
        assert await registry.revision(adapter, "r9") is None

    async def test_a_snapshot_holds_revisions_pointers_and_chosen_events_together(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("snapshot")
        await _activate_second(registry, adapter)
        snapshot = await registry.snapshot(
            tracks=[State.VALIDATED], adapter=adapter, event_types=(RevisionSuperseded,)
        )
        assert {r.revision for r in snapshot.revisions} == {"r1", "r2"}
        assert snapshot.pointers[(adapter, "prod")].active == "r2"
        [superseded] = snapshot.events
        assert isinstance(superseded, RevisionSuperseded)
        assert superseded.envelope.revision == "r1" and superseded.envelope.seq > 0

    async def test_an_expiry_clears_the_revision_from_every_environments_pointer(
        self, registry: Registry, unique: Callable[[str], str]
    ) -> None:
        adapter = unique("expiry")
        await _activate_second(registry, adapter)
        await registry.commit(
            [
                Step(lifecycle(RevisionRolledBack, adapter, "r2", "prod", restored_revision="r1")),
                Step(lifecycle(RevisionActivated, adapter, "r1", "prod", reason="rollback")),
            ]
        )
        await registry.transition(lifecycle(RevisionExpired, adapter, "r2"))
        assert pointers_naming(await registry.pointers(adapter), adapter, "r2") == []

    async def test_ping_answers_while_the_registry_is_reachable(self, registry: Registry) -> None:
        await registry.ping()
