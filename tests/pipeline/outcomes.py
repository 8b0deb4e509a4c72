"""What a pipeline run must end with, checked from the lifecycle log and the registry: pure
functions over plain values, so each rule has a table-driven unit test.

Every submitted revision reaches its expected terminal state exactly once: each step of
its path is on the log once (after dropping the relay's at-least-once duplicates, which
carry the same event id and the same bytes), in order, with no step missing, nothing
else about it, no gap in its adapter's `seq`, and the registry agrees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    activated = "activated"
    rejected = "rejected"


# The events each outcome's revision must show, in order; "*" marks an environment event.
PATHS: Mapping[Outcome, tuple[str, ...]] = {
    Outcome.activated: (
        "RevisionRegistered",
        "RevisionValidated",
        "RevisionEvaluated*",
        "RevisionApproved*",
        "RevisionActivated*",
    ),
    Outcome.rejected: ("RevisionRegistered", "RevisionRejected"),
}


@dataclass(frozen=True, slots=True)
class Expected:
    adapter: str
    revision: str
    outcome: Outcome
    environment: str

    @property
    def label(self) -> str:
        return f"adapter {self.adapter} {self.revision}"

    @property
    def terminal(self) -> str:
        return PATHS[self.outcome][-1].rstrip("*")


@dataclass(frozen=True, slots=True)
class Seen:
    """One record on the lifecycle topic, as far as the checks need it."""

    event_id: str
    event_type: str
    adapter: str
    revision: str
    environment: str
    seq: int
    payload_digest: str  # of the record's bytes: a true duplicate has the same


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """The registry's view of one revision: its tracks and the environment's pointer."""

    revision_track: str | None
    environment_track: str | None
    active: str | None  # the revision the environment's pointer serves for the adapter


@dataclass(frozen=True, slots=True)
class Settled:
    """What the registry must say once a revision is done."""

    revision_track: str
    environment_track: str | None
    serves: bool  # the environment's pointer serves it


SETTLED: Mapping[Outcome, Settled] = {
    Outcome.activated: Settled("validated", "active", serves=True),
    Outcome.rejected: Settled("rejected", None, serves=False),
}


@dataclass(frozen=True, slots=True)
class Deduped:
    events: tuple[Seen, ...]  # first copy of each event id, in log order
    duplicates: int  # extra copies with the same id and bytes (the relay's at-least-once)
    problems: tuple[str, ...] = ()  # one id with different bytes: never legitimate


def dedupe(records: Iterable[Seen]) -> Deduped:
    first: dict[str, Seen] = {}
    duplicates = 0
    problems = []
    for record in records:
        kept = first.get(record.event_id)
        if kept is None:
            first[record.event_id] = record
        elif kept.payload_digest == record.payload_digest:
            duplicates += 1
        else:
            problems.append(
                f"adapter {record.adapter} {record.revision}: event id {record.event_id} "
                f"({record.event_type}) on the log twice with different bytes"
            )
    return Deduped(tuple(first.values()), duplicates, tuple(problems))


def _step_matches(step: str, event: Seen, expected: Expected) -> bool:
    wanted_environment = expected.environment if step.endswith("*") else ""
    return (
        event.event_type == step.rstrip("*")
        and event.revision == expected.revision
        and event.environment == wanted_environment
    )


def _twice(count: int) -> str:
    return {2: "twice", 3: "three times"}.get(count, f"{count} times")


def check_log(expected: Expected, events: Sequence[Seen]) -> list[str]:
    """Problems with one revision's events (deduped, this adapter's only), named by step."""
    path = PATHS[expected.outcome]
    found = {step: [e for e in events if _step_matches(step, e, expected)] for step in path}
    problems = [
        f"{step.rstrip('*')} {_twice(len(copies))}: event ids "
        + ", ".join(e.event_id for e in copies)
        for step, copies in found.items()
        if len(copies) > 1
    ]
    present = [i for i, step in enumerate(path) if found[step]]
    missing = [i for i, step in enumerate(path) if not found[step]]
    if missing:
        first = missing[0]
        name = path[first].rstrip("*")
        if first == 0:
            problems.append(f"never registered: no {name}")
        elif present and present[-1] > first:
            later = path[present[-1]].rstrip("*")
            problems.append(f"gap: no {name}, yet {later} is there")
        else:
            problems.append(f"stuck after {path[first - 1].rstrip('*')}: no {name}")
    claimed = {e.event_id for copies in found.values() for e in copies}
    for event in events:
        if event.event_id not in claimed:
            where = f" in {event.environment!r}" if event.environment else ""
            problems.append(
                f"unexpected {event.event_type}{where} for {event.revision} "
                f"(event id {event.event_id})"
            )
    firsts = [(min(e.seq for e in found[path[i]]), path[i].rstrip("*")) for i in present]
    if [step for _, step in sorted(firsts)] != [step for _, step in firsts]:
        problems.append("out of order: " + " -> ".join(step for _, step in sorted(firsts)))
    seqs = sorted(e.seq for e in events)
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"seq gap: the adapter's events carry seq {seqs}")
    return [f"{expected.label} {p}" for p in problems]


def check_registry(expected: Expected, row: RegistryRow | None) -> list[str]:
    """Problems with what the registry says about one revision."""
    want = SETTLED[expected.outcome]
    if row is None:
        return [f"{expected.label} is not in the registry"]
    problems = []
    if row.revision_track != want.revision_track:
        problems.append(f"revision track is {row.revision_track}, not {want.revision_track}")
    if row.environment_track != want.environment_track:
        problems.append(
            f"track in {expected.environment!r} is {row.environment_track}, "
            f"not {want.environment_track}"
        )
    serving = expected.revision if want.serves else None
    if row.active != serving:
        problems.append(f"the pointer in {expected.environment!r} serves {row.active or 'nothing'}")
    return [f"{expected.label} in the registry: {p}" for p in problems]


@dataclass(frozen=True, slots=True)
class Report:
    problems: tuple[str, ...]
    duplicates: int
    events: int
    done: int = 0
    per_type: Mapping[str, int] = field(default_factory=dict)

    def raise_if_bad(self, context: str = "") -> None:
        if self.problems:
            shown = "\n".join(self.problems[:200])
            more = len(self.problems) - 200
            raise AssertionError(
                f"{context}{': ' if context else ''}"
                f"{len(self.problems)} pipeline outcome problem(s):\n{shown}"
                + (f"\n... and {more} more" if more > 0 else "")
            )


def finished(expected: Iterable[Expected], events: Iterable[Seen]) -> set[str]:
    """The adapters whose revision shows its terminal event (progress while waiting)."""
    wanted = {e.adapter: e for e in expected}
    return {
        e.adapter
        for e in events
        if e.adapter in wanted
        and e.event_type == wanted[e.adapter].terminal
        and e.revision == wanted[e.adapter].revision
    }


def check_run(
    expected: Sequence[Expected],
    records: Iterable[Seen],
    registry: Mapping[str, RegistryRow],
) -> Report:
    """Every problem of a run: the log (deduped) and the registry, per expected revision."""
    deduped = dedupe(records)
    by_adapter: dict[str, list[Seen]] = defaultdict(list)
    for event in deduped.events:
        by_adapter[event.adapter].append(event)
    problems = list(deduped.problems)
    for exp in expected:
        problems += check_log(exp, by_adapter.pop(exp.adapter, []))
        problems += check_registry(exp, registry.get(exp.adapter))
    for adapter, events in sorted(by_adapter.items()):
        problems.append(f"adapter {adapter}: {len(events)} event(s), but it was never submitted")
    per_type: dict[str, int] = defaultdict(int)
    for event in deduped.events:
        per_type[event.event_type] += 1
    return Report(
        problems=tuple(problems),
        duplicates=deduped.duplicates,
        events=len(deduped.events),
        done=len(finished(expected, deduped.events)),
        per_type=dict(per_type),
    )
