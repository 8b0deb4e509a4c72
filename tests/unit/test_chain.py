"""The per-adapter hash chain: sealing links events, and any tampering breaks a link."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest

from shared.chain import (
    FIRST_SEQ,
    GENESIS_HASH,
    canonical_bytes,
    compute_hash,
    seal,
    verify_link,
)
from shared.codec import Codec, to_record
from shared.events import (
    CanaryStarted,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from tests.samples import sample

Link = tuple[str, dict[str, Any]]
MICROSECOND = timedelta(microseconds=1)
LIFECYCLE: list[type[Any]] = [
    RevisionRegistered,
    RevisionValidated,
    RevisionEvaluated,
    RevisionApproved,
    CanaryStarted,
    RevisionActivated,
]


def sealed_chain() -> list[Any]:
    events: list[Any] = []
    prev_hash = GENESIS_HASH
    for seq, cls in enumerate(LIFECYCLE, start=FIRST_SEQ):
        event = seal(sample(cls), seq=seq, prev_hash=prev_hash)
        events.append(event)
        prev_hash = event.envelope.hash
    return events


@pytest.fixture(scope="module")
def published() -> list[Link]:
    """The chain as an auditor sees it: records decoded as their writer wrote them."""
    codec = Codec()
    return [codec.decode_writer(codec.encode(event)) for event in sealed_chain()]


def verify_chain(links: list[Link]) -> list[str]:
    """Walk the chain from genesis the way the auditor does; every problem found."""
    problems, prev_hash = [], GENESIS_HASH
    for seq, (full_name, record) in enumerate(links, start=FIRST_SEQ):
        problem = verify_link(prev_hash, seq, full_name, record)
        if problem is not None:
            problems.append(problem)
        prev_hash = record["envelope"]["hash"]
    return problems


def test_sealing_numbers_events_from_one_and_links_each_to_the_previous_hash() -> None:
    events = sealed_chain()
    assert [e.envelope.seq for e in events] == list(range(1, len(LIFECYCLE) + 1))
    assert events[0].envelope.prev_hash == ""
    for before, after in pairwise(events):
        assert after.envelope.prev_hash == before.envelope.hash
    assert len({e.envelope.hash for e in events}) == len(events)
    assert all(len(e.envelope.hash) == 64 for e in events)


def test_sealing_returns_a_copy_and_changes_nothing_but_the_chain_fields() -> None:
    event = sample(RevisionValidated)
    sealed = seal(event, seq=7, prev_hash="ab" * 32)
    assert event.envelope.hash == "" and event.envelope.seq == 0
    unchained: dict[str, Any] = {"seq": 0, "prev_hash": "", "hash": ""}
    assert (
        dataclasses.replace(sealed, envelope=dataclasses.replace(sealed.envelope, **unchained))
        == event
    )


def test_sealing_is_deterministic() -> None:
    assert sealed_chain() == sealed_chain()


def test_an_untouched_published_chain_verifies(published: list[Link]) -> None:
    assert verify_chain(published) == []


def test_hash_over_the_decoded_record_equals_the_hash_sealed_over_the_event() -> None:
    event = seal(sample(RevisionEvaluated), seq=1, prev_hash=GENESIS_HASH)
    assert verify_link(GENESIS_HASH, 1, event.SCHEMA, to_record(event)) is None


def changing(path: str, change: Callable[[Any], Any]) -> Callable[[list[Link]], list[Link]]:
    """Tamper: replace the value at `path` (dotted, list indexes as numbers) in the third link."""

    def tamper(links: list[Link]) -> list[Link]:
        *parents, leaf = [int(key) if key.isdigit() else key for key in path.split(".")]
        target: Any = links[2][1]
        for key in parents:
            target = target[key]
        target[leaf] = change(target[leaf])
        return links

    return tamper


def setting(path: str, value: Any) -> Callable[[list[Link]], list[Link]]:
    return changing(path, lambda _: value)


def rehashing(tamper: Callable[[list[Link]], list[Link]]) -> Callable[[list[Link]], list[Link]]:
    """A forger who also recomputes the tampered link's own hash."""

    def forge(links: list[Link]) -> list[Link]:
        links = tamper(links)
        full_name, record = links[2]
        envelope = record["envelope"]
        envelope["hash"] = compute_hash(envelope["prev_hash"], full_name, record)
        return links

    return forge


ALTERED = "is not the computed"
TAMPERING: list[tuple[str, Callable[[list[Link]], list[Link]], str]] = [
    ("a top-level field", setting("suite_digest", "sha256:" + "0" * 64), ALTERED),
    ("a nested envelope field", setting("envelope.actor.principal", "mallory"), ALTERED),
    (
        "the time by a microsecond",
        changing("envelope.occurred_at", lambda t: t + MICROSECOND),
        ALTERED,
    ),
    ("a metric by one ulp", changing("metrics.0.value", lambda v: math.nextafter(v, 1)), ALTERED),
    ("an optional set to null", setting("baseline_revision", None), ALTERED),
    ("an item in a list", setting("metrics.1.passed", False), ALTERED),
    ("the sequence number", setting("envelope.seq", 4), "seq is 4, expected 3"),
    ("the link's own hash", setting("envelope.hash", "f" * 64), "is not the computed"),
    (
        "a field, rehashing that link",
        rehashing(setting("backend", "cpu")),
        "is not the previous hash",
    ),
    (
        "the event's kind",
        lambda links: [*links[:2], (RevisionValidated.SCHEMA, links[2][1]), *links[3:]],
        ALTERED,
    ),
    ("dropping an event", lambda links: links[:2] + links[3:], "seq is 4, expected 3"),
    ("dropping the first event", lambda links: links[1:], "seq is 2, expected 1"),
    (
        "swapping two events",
        lambda links: [*links[:2], links[3], links[2], *links[4:]],
        "seq is 4, expected 3",
    ),
    (
        "replaying an event",
        lambda links: [*links[:3], links[2], *links[3:]],
        "seq is 3, expected 4",
    ),
]


@pytest.mark.parametrize(("case", "tamper", "says"), TAMPERING, ids=[c[0] for c in TAMPERING])
def test_tampering_with_a_published_chain_breaks_a_link(
    published: list[Link], case: str, tamper: Callable[[list[Link]], list[Link]], says: str
) -> None:
    problems = verify_chain(tamper(copy.deepcopy(published)))
    assert problems, f"{case} went unnoticed"
    assert says in " | ".join(problems), case


def test_a_moved_but_intact_event_is_not_reported_as_altered(published: list[Link]) -> None:
    (problem,) = [p for p in verify_chain(published[:2] + published[3:]) if "seq is 4" in p]
    assert "is not the previous hash" in problem and "is not the computed" not in problem


def test_a_problem_names_the_event_it_found_it_in(published: list[Link]) -> None:
    full_name, record = published[2]
    problem = verify_link("0" * 64, 3, full_name, record)
    assert problem is not None
    assert problem.startswith(f"{full_name} {record['envelope']['event_id']!r}: ")


RECORD: dict[str, Any] = {
    "envelope": {
        "event_id": "e-1",
        "seq": 1,
        "prev_hash": "",
        "hash": "ignored",
        "occurred_at": datetime(2025, 1, 1, tzinfo=UTC),
    },
    "score": 0.1,
    "evidence": {"b": "2", "a": "ü"},
    "raw": b"\x00\xff",
    "note": None,
}
CANONICAL = (
    b"adapters.lifecycle.v1.Example\n"
    b'{"envelope":{"event_id":"e-1","occurred_at":1735689600000000,"prev_hash":"","seq":1},'
    b'"evidence":{"a":"\\u00fc","b":"2"},"note":null,"raw":"00ff","score":0.1}'
)


def test_canonical_bytes_are_sorted_compact_json_without_the_hash() -> None:
    assert canonical_bytes("adapters.lifecycle.v1.Example", RECORD) == CANONICAL


def test_canonical_bytes_do_not_depend_on_key_order_or_the_recorded_hash() -> None:
    shuffled = dict(reversed(RECORD.items())) | {"envelope": {**RECORD["envelope"], "hash": "x"}}
    assert canonical_bytes("n", shuffled) == canonical_bytes("n", RECORD)


def test_the_hash_of_a_fixed_record_is_pinned() -> None:
    # sha256(b"\n" + CANONICAL), computed independently. Any change to the canonical form
    # would break every chain already on the topic, so it has to fail here first.
    pinned = "f8bb05a80e4937e2f28767bc29ee9768e000a1b8711f7dcd2367ad08afc57aa6"
    assert compute_hash("", "adapters.lifecycle.v1.Example", RECORD) == pinned


def test_the_same_instant_in_any_timezone_hashes_the_same() -> None:
    local = copy.deepcopy(RECORD)
    new_york_winter = timezone(timedelta(hours=-5))
    local["envelope"]["occurred_at"] = datetime(2024, 12, 31, 19, tzinfo=new_york_winter)
    assert canonical_bytes("n", local) == canonical_bytes("n", RECORD)


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"score": 1}, ValueError),
        ({"envelope": {"occurred_at": datetime(2025, 1, 1)}}, ValueError),
        ({"envelope": {"when": {1, 2}}}, TypeError),
    ],
    ids=["no envelope", "naive datetime", "a set"],
)
def test_canonical_bytes_refuse_what_cannot_be_hashed_unambiguously(
    record: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        canonical_bytes("n", record)
