"""The audit benchmark's planned history is one the registry would commit and the audit
would pass: legal in every step, covering the whole lifecycle, restores that hold."""

from __future__ import annotations

from collections import Counter

from adapterctl.source import accepted_events
from benchmarks.history import AdapterStory, plan
from shared.audit import Entry, Position, verify
from shared.chain import GENESIS_HASH, seal
from shared.codec import Codec
from shared.events import LIFECYCLE_EVENTS, RevisionRolledBack
from shared.pointers import EnvironmentPointer, fold, move_pointer

CODEC = Codec.default()


def sealed_log(stories: list[AdapterStory]) -> list[Entry]:
    """Each adapter's events sealed into its chain, as the registry seals them."""
    entries: list[Entry] = []
    for partition, story in enumerate(stories):
        head = GENESIS_HASH
        for seq, event in enumerate((e for c in story.commits for e in c), start=1):
            sealed = seal(event, seq=seq, prev_hash=head)
            head = sealed.envelope.hash
            full_name, record = CODEC.decode_writer(CODEC.encode(sealed))
            position = Position("lifecycle", partition, seq - 1)
            entries.append(Entry(position, story.adapter, full_name, record, sealed))
    return entries


def test_the_planned_history_verifies_cleanly_and_replays() -> None:
    stories = plan(3000, 30)
    report = verify(sealed_log(stories))
    assert report.ok, report.first_problem
    assert report.events == sum(s.events for s in stories)
    assert 3000 <= report.events < 3000 + 30 * 3
    fold(accepted_events(report))


def test_the_planned_history_uses_every_lifecycle_event() -> None:
    kinds = Counter(type(e) for s in plan(3000, 30) for c in s.commits for e in c)
    assert set(kinds) == set(LIFECYCLE_EVENTS)


def test_a_rollback_that_names_its_restored_revision_leaves_it_active() -> None:
    restores = 0
    for story in plan(3000, 30):
        pointers: dict[str, EnvironmentPointer] = {}
        for commit in story.commits:
            for event in commit:
                environment = event.envelope.environment
                if environment:
                    before = pointers.get(environment, EnvironmentPointer())
                    pointers[environment] = move_pointer(before, event)
            for event in commit:
                if isinstance(event, RevisionRolledBack) and event.restored_revision:
                    restores += 1
                    active = pointers[event.envelope.environment].active
                    assert active == event.restored_revision
    assert restores > 0


def test_the_same_seed_plans_the_same_history() -> None:
    def shape(stories: list[AdapterStory]) -> list[list[str]]:
        return [[type(e).__name__ for c in s.commits for e in c] for s in stories]

    assert shape(plan(1000, 10)) == shape(plan(1000, 10))
