"""The audit finds every kind of tampering with the lifecycle log, and only real problems."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from shared.audit import AuditReport, Entry, Position, Problem, read_entry, verify
from shared.chain import FIRST_SEQ, GENESIS_HASH, seal
from shared.codec import Codec
from shared.events import (
    AdapterTrained,
    CanaryStarted,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.lifecycle import LifecycleEvent
from tests.factories import lifecycle, to_active
from tests.samples import sample

CODEC = Codec.default()
TOPIC = "adapters.lifecycle.v1"
START = datetime(2025, 1, 1, tzinfo=UTC)
ALPHA, BETA, GAMMA = "alpha", "beta", "gamma"
REV_A, REV_B, REV_C = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
PROD = "production"


class Record(NamedTuple):
    partition: int
    key: str | None
    value: bytes | None


Tamper = Callable[[list[Record]], list[Record]]


def sealed(events: list[Any]) -> list[Any]:
    """`events` sealed in order as one adapter's chain, the n-th one hour n after START."""
    chain: list[Any] = []
    prev_hash = GENESIS_HASH
    for seq, event in enumerate(events, start=FIRST_SEQ):
        timed = stamped(event, START + timedelta(hours=seq))
        chain.append(seal(timed, seq=seq, prev_hash=prev_hash))
        prev_hash = chain[-1].envelope.hash
    return chain


def stamped(event: Any, moment: datetime) -> Any:
    return dataclasses.replace(
        event, envelope=dataclasses.replace(event.envelope, occurred_at=moment)
    )


def alpha_chain() -> list[Any]:
    """Two revisions in production: A active, B canary then active, B rolled back to A."""
    return sealed(
        [
            *to_active(ALPHA, REV_A, PROD),  # seq 1-5
            lifecycle(RevisionRegistered, ALPHA, REV_B),  # 6
            lifecycle(RevisionValidated, ALPHA, REV_B),  # 7
            lifecycle(RevisionEvaluated, ALPHA, REV_B, PROD),  # 8
            lifecycle(RevisionApproved, ALPHA, REV_B, PROD),  # 9
            lifecycle(CanaryStarted, ALPHA, REV_B, PROD, traffic_percent=10),  # 10
            lifecycle(RevisionActivated, ALPHA, REV_B, PROD, previous_revision=REV_A),  # 11
            lifecycle(RevisionSuperseded, ALPHA, REV_A, PROD, superseded_by=REV_B),  # 12
            lifecycle(RevisionRolledBack, ALPHA, REV_B, PROD, restored_revision=REV_A),  # 13
            lifecycle(RevisionActivated, ALPHA, REV_A, PROD, previous_revision=REV_B),  # 14
        ]
    )


def beta_chain() -> list[Any]:
    return sealed(to_active(BETA, REV_C, "staging"))


def record(event: Any, partition: int) -> Record:
    return Record(partition, event.envelope.adapter, CODEC.encode(event))


def clean_log() -> list[Record]:
    """Alpha in partition 0, beta in partition 1, as the relay publishes them."""
    return [record(e, 0) for e in alpha_chain()] + [record(e, 1) for e in beta_chain()]


def entries(records: list[Record]) -> list[Entry]:
    """The records as `iter_topic` yields them: partition by partition, offsets in order."""
    offsets: dict[int, int] = {}
    result = []
    for r in sorted(records, key=lambda r: r.partition):
        offset = offsets[r.partition] = offsets.get(r.partition, -1) + 1
        key = None if r.key is None else r.key.encode()
        result.append(read_entry(CODEC, Position(TOPIC, r.partition, offset), key, r.value))
    return result


def audit(records: list[Record]) -> AuditReport:
    return verify(entries(records))


def event_at(records: list[Record], adapter: str, seq: int) -> Any:
    return next(
        e for e in map(decode, records) if e.envelope.adapter == adapter and e.envelope.seq == seq
    )


def decode(r: Record) -> Any:
    return CODEC.decode(r.value) if r.value is not None else None


def index_of(records: list[Record], adapter: str, seq: int) -> int:
    return next(
        i
        for i, r in enumerate(records)
        if r.key == adapter and (e := decode(r)) is not None and e.envelope.seq == seq
    )


# --- the tamperings -------------------------------------------------------------------------


def alter(adapter: str, seq: int) -> Tamper:
    """Change who approved and re-encode, leaving the sealed hash as it was."""

    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, seq)
        event = decode(records[i])
        forged = dataclasses.replace(event, approvers=["mallory@example.internal"])
        return [*records[:i], records[i]._replace(value=CODEC.encode(forged)), *records[i + 1 :]]

    return tamper


def alter_and_reseal(adapter: str, seq: int) -> Tamper:
    """Change who approved and seal again: its own hash holds, the next link breaks."""

    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, seq)
        event = decode(records[i])
        forged = dataclasses.replace(event, approvers=["mallory@example.internal"])
        resealed = seal(forged, seq=seq, prev_hash=event.envelope.prev_hash)
        return [*records[:i], records[i]._replace(value=CODEC.encode(resealed)), *records[i + 1 :]]

    return tamper


def drop(adapter: str, seq: int) -> Tamper:
    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, seq)
        return records[:i] + records[i + 1 :]

    return tamper


def swap(adapter: str, seq: int) -> Tamper:
    """Exchange `seq` with the record after it."""

    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, seq)
        return [*records[:i], records[i + 1], records[i], *records[i + 2 :]]

    return tamper


def inject_forged(adapter: str, after: int) -> Tamper:
    """Slip a rollback in after `after`, claiming the next seq, with a made-up hash."""

    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, after)
        previous = decode(records[i])
        fake = lifecycle(RevisionRolledBack, adapter, previous.envelope.revision, PROD)
        fake = seal(fake, seq=after + 1, prev_hash=previous.envelope.hash)
        fake = dataclasses.replace(fake, envelope=dataclasses.replace(fake.envelope, hash="f" * 64))
        return [*records[: i + 1], record(fake, records[i].partition), *records[i + 1 :]]

    return tamper


def reuse_seq(adapter: str, seq: int) -> Tamper:
    """Append a different, correctly sealed event at a seq the chain already holds."""

    def tamper(records: list[Record]) -> list[Record]:
        prev_hash = event_at(records, adapter, seq - 1).envelope.hash
        other = lifecycle(RevisionSuperseded, adapter, REV_A, PROD, superseded_by=REV_B)
        return [*records, record(seal(other, seq=seq, prev_hash=prev_hash), 0)]

    return tamper


def illegal(records: list[Record]) -> list[Record]:
    """A correctly sealed chain that activates a revision nobody validated or approved."""
    skipping = sealed(
        [
            lifecycle(RevisionRegistered, GAMMA, REV_C),
            lifecycle(RevisionActivated, GAMMA, REV_C, PROD),
        ]
    )
    return records + [record(e, 2) for e in skipping]


def republish(adapter: str, *seqs: int) -> Tamper:
    """What the relay does after a crash between delivery and marking rows published."""

    def tamper(records: list[Record]) -> list[Record]:
        return records + [records[index_of(records, adapter, s)] for s in seqs]

    return tamper


def garbage(records: list[Record]) -> list[Record]:
    return [*records, Record(1, BETA, b"\xc3\x01" + b"\x00" * 8 + b"not avro")]


def move(adapter: str, seq: int, partition: int) -> Tamper:
    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, seq)
        return [*records[:i], records[i]._replace(partition=partition), *records[i + 1 :]]

    return tamper


def rekey(adapter: str, seq: int, key: str) -> Tamper:
    def tamper(records: list[Record]) -> list[Record]:
        i = index_of(records, adapter, seq)
        return [*records[:i], records[i]._replace(key=key), *records[i + 1 :]]

    return tamper


def untouched(records: list[Record]) -> list[Record]:
    return records


# (tampering, expected (code, adapter, seq) per problem in log order, duplicates)
CASES: dict[str, tuple[Tamper, list[tuple[str, str, int | None]], int]] = {
    "clean log": (untouched, [], 0),
    "altered payload": (alter(ALPHA, 9), [("hash_mismatch", ALPHA, 9)], 0),
    "altered and re-sealed": (alter_and_reseal(ALPHA, 9), [("broken_link", ALPHA, 10)], 0),
    "dropped event": (drop(ALPHA, 10), [("missing_seq", ALPHA, 11)], 0),
    "dropped event the lifecycle needs": (
        drop(ALPHA, 8),
        [("missing_seq", ALPHA, 9), ("illegal_transition", ALPHA, 9)],
        0,
    ),
    "two swapped": (swap(ALPHA, 6), [("reordered", ALPHA, 6)], 0),
    "injected event with forged hash": (inject_forged(ALPHA, 5), [("hash_mismatch", ALPHA, 6)], 0),
    "seq reused by a different event": (reuse_seq(ALPHA, 12), [("seq_reused", ALPHA, 12)], 0),
    "illegal transition": (illegal, [("illegal_transition", GAMMA, 2)], 0),
    "exact duplicates": (republish(ALPHA, 13, 14), [], 2),
    "undecodable record": (garbage, [("undecodable", BETA, None)], 0),
    "event outside its adapter's partition": (move(BETA, 5, 2), [("partition_split", BETA, 5)], 0),
    "record keyed by another adapter": (rekey(BETA, 2, ALPHA), [("key_mismatch", BETA, 2)], 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_audit_reports_exactly_the_expected_problems(case: str) -> None:
    tamper, expected, duplicates = CASES[case]

    report = audit(tamper(clean_log()))

    assert [(p.code, p.adapter, p.seq) for p in report.problems] == expected, report.problems
    assert report.ok is (not expected)
    assert report.duplicates == duplicates
    assert report.first_problem == (report.problems[0] if expected else None)


def test_a_clean_log_verifies_and_counts_its_events_and_adapters() -> None:
    report = audit(clean_log())

    assert report.ok and report.first_problem is None
    assert report.events == 19 and report.adapters == (ALPHA, BETA)
    assert len(report.accepted) == 19


def test_an_altered_event_is_named_by_its_position_and_event_id() -> None:
    records = clean_log()
    tampered = event_at(records, ALPHA, 9)

    problem = audit(alter(ALPHA, 9)(records)).first_problem

    assert problem is not None
    assert problem.position == Position(TOPIC, 0, 8)
    assert problem.event_id == tampered.envelope.event_id
    assert problem.event_type == "RevisionApproved"
    assert "altered" in problem.message
    assert f"{TOPIC}[0]@8" in str(problem) and tampered.envelope.event_id in str(problem)


def test_a_dropped_event_is_named_as_the_missing_seq() -> None:
    problem = audit(drop(ALPHA, 10)(clean_log())).first_problem

    assert problem is not None and "missing seq 10" in problem.message


def test_swapped_events_are_reported_once_at_the_one_that_comes_late() -> None:
    records = clean_log()
    late = event_at(records, ALPHA, 6)

    report = audit(swap(ALPHA, 6)(records))

    assert len(report.problems) == 1
    assert report.problems[0].event_id == late.envelope.event_id
    assert "after seq 7" in report.problems[0].message


def test_an_injected_event_is_named_and_the_genuine_one_keeps_its_place() -> None:
    records = inject_forged(ALPHA, 5)(clean_log())
    injected = decode(records[5])

    report = audit(records)

    assert report.first_problem is not None
    assert report.first_problem.event_id == injected.envelope.event_id
    kept = [e.event.envelope.event_id for e in report.accepted if e.event is not None]
    assert injected.envelope.event_id not in kept and len(kept) == 19


def test_a_reused_seq_names_the_event_that_already_holds_it() -> None:
    records = clean_log()
    holder = event_at(records, ALPHA, 12)

    problem = audit(reuse_seq(ALPHA, 12)(records)).first_problem

    assert problem is not None and holder.envelope.event_id in problem.message


def test_a_copy_with_the_same_id_and_hash_but_altered_content_is_not_a_duplicate() -> None:
    records = clean_log()
    altered = alter(ALPHA, 9)(records)[index_of(records, ALPHA, 9)]

    report = audit([*records, altered])

    assert report.duplicates == 0
    assert [(p.code, p.seq) for p in report.problems] == [("seq_reused", 9)]


def test_duplicates_are_left_out_of_the_accepted_events() -> None:
    report = audit(republish(ALPHA, 13, 14)(clean_log()))

    assert report.events == 21 and len(report.accepted) == 19


def test_an_event_that_is_not_a_lifecycle_event_is_a_problem() -> None:
    stray = Record(1, BETA, CODEC.encode(sample(AdapterTrained)))

    report = audit([*clean_log(), stray])

    assert [p.code for p in report.problems] == ["not_lifecycle"]
    assert report.problems[0].event_type == AdapterTrained.SCHEMA


def test_a_tombstone_is_a_problem() -> None:
    report = audit([*clean_log(), Record(1, BETA, None)])

    assert [p.code for p in report.problems] == ["undecodable"]


def test_problems_come_back_in_log_order_across_adapters() -> None:
    records = drop(BETA, 4)(drop(ALPHA, 10)(clean_log()))

    report = audit(records)

    positions = [p.position for p in report.problems]
    assert positions == sorted(positions)
    assert [(p.adapter, p.code) for p in report.problems] == [
        (ALPHA, "missing_seq"),
        (BETA, "missing_seq"),
        (BETA, "illegal_transition"),
    ]


def test_extra_checkers_add_their_findings_for_each_event() -> None:
    def unsigned_approvals(entry: Entry, event: LifecycleEvent) -> list[tuple[str, str]]:
        if isinstance(event, RevisionApproved):
            return [("unsigned", f"{event.envelope.event_id} carries no valid signature")]
        return []

    report = verify(entries(clean_log()), checkers=[unsigned_approvals])

    assert [(p.code, p.adapter, p.seq) for p in report.problems] == [
        ("unsigned", ALPHA, 4),
        ("unsigned", ALPHA, 9),
        ("unsigned", BETA, 4),
    ]


def test_problem_text_names_position_event_adapter_and_seq() -> None:
    problem = Problem(
        Position(TOPIC, 2, 41), "hash_mismatch", "altered", ALPHA, 7, "e-1", "RevisionApproved"
    )

    assert str(problem) == (
        f"{TOPIC}[2]@41 RevisionApproved e-1 (adapter alpha, seq 7): [hash_mismatch] altered"
    )
