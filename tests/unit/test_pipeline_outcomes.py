"""The pipeline drills' outcome checks: each rule, one row, with the message that names the
revision and the step where it was lost or duplicated."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.pipeline.outcomes import (
    Expected,
    Outcome,
    RegistryRow,
    Seen,
    check_run,
    dedupe,
    finished,
)

ENV = "drill"
REV = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
GOOD = Expected("a-0001", REV, Outcome.activated, ENV)
BAD = Expected("a-0002", REV, Outcome.rejected, ENV)
ACTIVE = RegistryRow("validated", "active", REV)
REJECTED = RegistryRow("rejected", None, None)
ACTIVATION = [
    ("RevisionRegistered", ""),
    ("RevisionValidated", ""),
    ("RevisionEvaluated", ENV),
    ("RevisionApproved", ENV),
    ("RevisionActivated", ENV),
]


def seen(
    adapter: str,
    steps: list[tuple[str, str]],
    *,
    revision: str = REV,
    seqs: list[int] | None = None,
    ids: list[str] | None = None,
) -> list[Seen]:
    seqs = seqs or list(range(1, len(steps) + 1))
    ids = ids or [f"{adapter}-{t}-{e}" for t, e in steps]
    return [
        Seen(i, t, adapter, revision, e, s, f"bytes of {i}")
        for (t, e), s, i in zip(steps, seqs, ids, strict=True)
    ]


@dataclass
class Row:
    name: str
    expected: list[Expected]
    records: list[Seen]
    registry: dict[str, RegistryRow]
    problems: list[str] = field(default_factory=list)  # each a substring of one problem
    duplicates: int = 0


ROWS = [
    Row("a clean activation", [GOOD], seen("a-0001", ACTIVATION), {"a-0001": ACTIVE}),
    Row(
        "a clean rejection",
        [BAD],
        seen("a-0002", [("RevisionRegistered", ""), ("RevisionRejected", "")]),
        {"a-0002": REJECTED},
    ),
    Row(
        "a republished event is a duplicate on the wire, not a problem",
        [GOOD],
        seen("a-0001", ACTIVATION) + seen("a-0001", ACTIVATION[3:4], seqs=[4]),
        {"a-0001": ACTIVE},
        duplicates=1,
    ),
    Row(
        "stuck after validation",
        [GOOD],
        seen("a-0001", ACTIVATION[:2]),
        {"a-0001": RegistryRow("validated", None, None)},
        [
            f"adapter a-0001 {REV} stuck after RevisionValidated: no RevisionEvaluated",
            f"adapter a-0001 {REV} in the registry: track in 'drill' is None, not active",
            f"adapter a-0001 {REV} in the registry: the pointer in 'drill' serves nothing",
        ],
    ),
    Row(
        "stuck before anything was registered",
        [GOOD],
        [],
        {},
        [
            f"adapter a-0001 {REV} never registered: no RevisionRegistered",
            f"adapter a-0001 {REV} is not in the registry",
        ],
    ),
    Row(
        "activated twice under two event ids",
        [GOOD],
        seen(
            "a-0001",
            [*ACTIVATION, ("RevisionActivated", ENV)],
            ids=["r", "v", "e", "a", "act-1", "act-2"],
        ),
        {"a-0001": ACTIVE},
        [f"adapter a-0001 {REV} RevisionActivated twice: event ids act-1, act-2"],
    ),
    Row(
        "one event id with two different payloads",
        [GOOD],
        [
            *seen("a-0001", ACTIVATION),
            Seen("a-0001-RevisionActivated-drill", "RevisionActivated", "a-0001", REV, ENV, 5, "x"),
        ],
        {"a-0001": ACTIVE},
        ["(RevisionActivated) on the log twice with different bytes"],
    ),
    Row(
        "a step missing in the middle",
        [GOOD],
        seen("a-0001", [*ACTIVATION[:2], *ACTIVATION[3:]]),
        {"a-0001": ACTIVE},
        [f"adapter a-0001 {REV} gap: no RevisionEvaluated, yet RevisionActivated is there"],
    ),
    Row(
        "a gap in the adapter's seq",
        [GOOD],
        seen("a-0001", ACTIVATION, seqs=[1, 2, 3, 5, 6]),
        {"a-0001": ACTIVE},
        ["seq gap: the adapter's events carry seq [1, 2, 3, 5, 6]"],
    ),
    Row(
        "steps out of order",
        [GOOD],
        seen("a-0001", ACTIVATION, seqs=[1, 2, 4, 3, 5]),
        {"a-0001": ACTIVE},
        ["out of order: RevisionRegistered -> RevisionValidated -> RevisionApproved"],
    ),
    Row(
        "a good revision rejected",
        [GOOD],
        seen("a-0001", [("RevisionRegistered", ""), ("RevisionRejected", "")]),
        {"a-0001": REJECTED},
        [
            "stuck after RevisionRegistered: no RevisionValidated",
            "unexpected RevisionRejected for",
            "revision track is rejected, not validated",
            "track in 'drill' is None, not active",
            "the pointer in 'drill' serves nothing",
        ],
    ),
    Row(
        "a bad revision that was activated",
        [BAD],
        seen("a-0002", ACTIVATION),
        {"a-0002": RegistryRow("validated", "active", REV)},
        [
            "stuck after RevisionRegistered: no RevisionRejected",
            f"unexpected RevisionValidated for {REV}",
            "unexpected RevisionEvaluated in 'drill'",
            "unexpected RevisionApproved in 'drill'",
            "unexpected RevisionActivated in 'drill'",
            "revision track is validated, not rejected",
            "track in 'drill' is active, not None",
            f"the pointer in 'drill' serves {REV}",
        ],
    ),
    Row(
        "an event in another environment",
        [GOOD],
        seen("a-0001", [*ACTIVATION, ("RevisionEvaluated", "production")]),
        {"a-0001": ACTIVE},
        ["unexpected RevisionEvaluated in 'production'"],
    ),
    Row(
        "a second revision of the adapter",
        [GOOD],
        seen("a-0001", ACTIVATION)
        + seen("a-0001", ACTIVATION[:1], revision=OTHER, seqs=[6], ids=["other"]),
        {"a-0001": ACTIVE},
        [f"unexpected RevisionRegistered for {OTHER} (event id other)"],
    ),
    Row(
        "events of an adapter nobody submitted",
        [GOOD],
        seen("a-0001", ACTIVATION) + seen("a-9999", ACTIVATION[:1]),
        {"a-0001": ACTIVE},
        ["adapter a-9999: 1 event(s), but it was never submitted"],
    ),
    Row(
        "the registry serves another revision",
        [GOOD],
        seen("a-0001", ACTIVATION),
        {"a-0001": RegistryRow("validated", "active", OTHER)},
        [f"the pointer in 'drill' serves {OTHER}"],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_every_rule_names_the_revision_and_the_step(row: Row) -> None:
    report = check_run(row.expected, row.records, row.registry)
    for wanted in row.problems:
        assert any(wanted in p for p in report.problems), (wanted, report.problems)
    assert len(report.problems) == len(row.problems), report.problems
    assert report.duplicates == row.duplicates
    if row.problems:
        with pytest.raises(AssertionError) as raised:
            report.raise_if_bad()
        assert all(p in str(raised.value) for p in report.problems)
    else:
        report.raise_if_bad()


def test_dedupe_keeps_the_first_copy_in_log_order() -> None:
    records = seen("a-0001", ACTIVATION)
    deduped = dedupe([records[0], records[1], records[0], records[2], records[1]])
    assert [e.event_type for e in deduped.events] == [
        "RevisionRegistered",
        "RevisionValidated",
        "RevisionEvaluated",
    ]
    assert deduped.duplicates == 2 and not deduped.problems


def test_progress_counts_only_the_expected_terminal_event_of_the_expected_revision() -> None:
    records = (
        seen("a-0001", ACTIVATION[:4])
        + seen("a-0002", [("RevisionRegistered", ""), ("RevisionRejected", "")])
        + seen("a-0003", ACTIVATION, revision=OTHER)
    )
    third = Expected("a-0003", REV, Outcome.activated, ENV)
    assert finished([GOOD, BAD, third], records) == {"a-0002"}
