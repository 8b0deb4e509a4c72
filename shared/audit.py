"""The auditor's verdict on the lifecycle log: hash chain, order, partitioning and legality.

Pure: the caller reads the log and hands over its records in log order; nothing here
touches Kafka, a clock or a logger. Each adapter's events form one hash chain (`seq` 1, 2,
... with `prev_hash` naming the previous link's `hash`), sit in one partition under the
adapter's key, and move each revision only along the lifecycle's transition table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from shared import chain
from shared.codec import Codec, CodecError
from shared.events import LIFECYCLE_EVENTS
from shared.lifecycle import InvalidTransition, LifecycleEvent, RevisionStatus, apply


@dataclass(frozen=True, slots=True, order=True)
class Position:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One record as read: where it sits, its writer's record and event, or why it has none."""

    position: Position
    key: str | None = None
    full_name: str = ""
    record: Mapping[str, Any] = field(default_factory=dict)
    event: LifecycleEvent | None = None
    error: str = ""
    headers: Mapping[str, bytes] = field(default_factory=dict)  # the registry's signature


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, named well enough to find the record again with any Kafka tool."""

    position: Position
    code: str  # stable: hash_mismatch, missing_seq, reordered, seq_reused, illegal_transition...
    message: str
    adapter: str = ""
    seq: int | None = None
    event_id: str = ""
    event_type: str = ""

    def __str__(self) -> str:
        what = " ".join(filter(None, [self.event_type or "record", self.event_id]))
        where = f"adapter {self.adapter or '?'}, seq {'?' if self.seq is None else self.seq}"
        return f"{self.position} {what} ({where}): [{self.code}] {self.message}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    """`events` counts every record read; `accepted` holds the chain's links in log order."""

    events: int
    duplicates: int
    adapters: tuple[str, ...]
    problems: list[Problem]
    accepted: tuple[Entry, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


# An extra per-event check (issue 6: approval signatures): (code, message) for each finding.
Checker = Callable[[Entry, LifecycleEvent], Iterable[tuple[str, str]]]


def read_entry(
    codec: Codec,
    position: Position,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] = (),
) -> Entry:
    """Decode one record for `verify`; a record that cannot be decoded becomes an error entry."""
    text_key = None if key is None else key.decode(errors="replace")
    if value is None:
        return Entry(position, text_key, error="empty record: a tombstone has no place here")
    try:
        full_name, record, event = codec.decode_both(value)
    except CodecError as exc:
        return Entry(position, text_key, error=f"undecodable record: {exc}")
    if not isinstance(event, LIFECYCLE_EVENTS):
        return Entry(position, text_key, full_name, record, error="not a lifecycle event")
    found = dict(headers)
    return Entry(position, text_key, full_name, record, cast(LifecycleEvent, event), "", found)


@dataclass(slots=True)
class _Link:
    entry: Entry
    event: LifecycleEvent
    intact: bool  # its hash recomputes from its own content and prev_hash


@dataclass(slots=True)
class _Chain:
    """What the audit knows about one adapter's chain so far."""

    partition: tuple[str, int]
    links: dict[int, _Link] = field(default_factory=dict)
    head: int = 0  # the highest seq placed


def verify(entries: Iterable[Entry], checkers: Sequence[Checker] = ()) -> AuditReport:
    """Audit the log; problems come back in log order, each adapter's chain judged whole."""
    problems: list[Problem] = []
    chains: dict[str, _Chain] = {}
    ids: dict[str, tuple[str, int]] = {}
    count = duplicates = 0
    for entry in entries:
        count += 1
        event = entry.event
        if event is None:
            code = "not_lifecycle" if entry.full_name else "undecodable"
            key, name = entry.key or "", entry.full_name
            problems.append(Problem(entry.position, code, entry.error, key, event_type=name))
            continue
        found: list[Problem] = []
        if _place(chains, ids, entry, event, found):
            duplicates += 1
            continue
        for check in checkers:
            found.extend(_problem(entry, event, code, msg) for code, msg in check(entry, event))
        problems.extend(found)
    for adapter_chain in chains.values():
        problems.extend(_missing(adapter_chain))
        problems.extend(_illegal(adapter_chain))
    problems.sort(key=lambda p: p.position)
    accepted = sorted(
        (link.entry for c in chains.values() for link in c.links.values()),
        key=lambda e: e.position,
    )
    return AuditReport(count, duplicates, tuple(sorted(chains)), problems, tuple(accepted))


def _place(
    chains: dict[str, _Chain],
    ids: dict[str, tuple[str, int]],
    entry: Entry,
    event: LifecycleEvent,
    found: list[Problem],
) -> bool:
    """Put the event into its adapter's chain; True when it is an exact duplicate to skip."""
    env = event.envelope

    def report(code: str, message: str) -> None:
        found.append(_problem(entry, event, code, message))

    where = (entry.position.topic, entry.position.partition)
    adapter = chains.setdefault(env.adapter, _Chain(where))
    # verify_link against the event's own seq and prev_hash judges only its hash.
    broken = chain.verify_link(env.prev_hash, env.seq, entry.full_name, entry.record)
    link = _Link(entry, event, broken is None)
    held = adapter.links.get(env.seq)
    if held is not None:
        same = (held.event.envelope.event_id, held.event.envelope.hash) == (env.event_id, env.hash)
        if same and link.intact:
            return True  # the relay republished after a crash: same id, seq and hash
        if held.intact or not link.intact:
            taken = f"seq {env.seq} is already held by {held.event.envelope.event_id} at "
            altered = "" if link.intact else "; its hash does not match its content either"
            report("seq_reused", f"{taken}{held.entry.position}{altered}")
            return False
        # The held link was forged (and reported so); this intact event is the real one.
    if entry.key != env.adapter:
        report("key_mismatch", f"record key {entry.key!r} is not the adapter {env.adapter!r}")
    if where != adapter.partition:
        report(
            "partition_split",
            f"adapter {env.adapter!r} also has events in partition {adapter.partition[1]}: "
            "keyed by adapter, all of them belong in one",
        )
    first = ids.setdefault(env.event_id, (env.adapter, env.seq))
    if first != (env.adapter, env.seq):
        report("event_id_reused", f"event id already used by {first[0]!r} seq {first[1]}")
    if broken is not None:
        report(
            "hash_mismatch",
            f"its hash {env.hash[:16]!r} does not match its content: altered after sealing, "
            "or forged",
        )
    if env.seq < chain.FIRST_SEQ:
        report("bad_seq", f"seq {env.seq} is below the first seq {chain.FIRST_SEQ}")
        return False
    if env.seq < adapter.head and held is None:
        last = adapter.links[adapter.head]
        report(
            "reordered",
            f"seq {env.seq} comes after seq {adapter.head} "
            f"({last.event.envelope.event_id} at {last.entry.position}): the log is out of order",
        )
    adapter.links[env.seq] = link
    adapter.head = max(adapter.head, env.seq)
    for earlier in (env.seq - 1, env.seq):
        if earlier + 1 in adapter.links and (earlier in adapter.links or earlier == 0):
            found.extend(_broken_link(adapter, earlier))
    return False


def _broken_link(adapter: _Chain, earlier: int) -> Iterator[Problem]:
    """The link from seq `earlier` (0: the genesis) to the next, when it does not hold."""
    later = adapter.links[earlier + 1]
    expected = adapter.links[earlier].event.envelope.hash if earlier else chain.GENESIS_HASH
    if later.event.envelope.prev_hash == expected:
        return
    if not later.intact or (earlier and not adapter.links[earlier].intact):
        return  # a link touching an altered or forged event: its hash problem says it all
    full_name, record = later.entry.full_name, later.entry.record
    message = chain.verify_link(expected, earlier + 1, full_name, record) or "prev_hash differs"
    yield _problem(later.entry, later.event, "broken_link", message)


def _missing(adapter: _Chain) -> Iterator[Problem]:
    """One problem per hole in the seqs, placed at the event that follows the hole."""
    previous = chain.FIRST_SEQ - 1
    for seq in sorted(adapter.links):
        if seq > previous + 1:
            gap = f"seq {previous + 1}" if seq == previous + 2 else f"seqs {previous + 1}-{seq - 1}"
            link, message = adapter.links[seq], f"missing {gap}: the chain jumps to seq {seq}"
            yield _problem(link.entry, link.event, "missing_seq", message)
        previous = seq


def _illegal(adapter: _Chain) -> Iterator[Problem]:
    """Replay each revision in seq order; after an illegal move its state is unknown."""
    statuses: dict[str, RevisionStatus] = {}
    unjudged: set[str] = set()
    for seq in sorted(adapter.links):
        link = adapter.links[seq]
        revision = link.event.envelope.revision
        if revision in unjudged:
            continue
        try:
            statuses[revision] = apply(statuses.get(revision, RevisionStatus()), link.event)
        except InvalidTransition as exc:
            unjudged.add(revision)
            yield _problem(
                link.entry,
                link.event,
                "illegal_transition",
                f"{exc} (later events of this revision are not judged)",
            )


def _problem(entry: Entry, event: LifecycleEvent, code: str, message: str) -> Problem:
    env = event.envelope
    return Problem(
        entry.position, code, message, env.adapter, env.seq, env.event_id, type(event).__name__
    )
