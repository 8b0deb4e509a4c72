"""The installed `adapterctl` against the real broker: a sealed log verifies, each tampering
with a copy of it is named, and the log answers what served in production when."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from shared.chain import FIRST_SEQ, GENESIS_HASH, seal
from shared.codec import Codec
from shared.events import (
    Actor,
    CanaryStarted,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.kafka.producer import make_producer
from shared.kafka.reader import LogRecord, read_topic
from shared.kafka.topics import admin_client
from tests.conftest import Infra
from tests.factories import lifecycle, log_signed, write_test_log_key

ADAPTERCTL = Path(sys.executable).parent / "adapterctl"
CODEC = Codec.default()
PROD, STAGING = "production", "staging"
REV_A, REV_B, REV_C, REV_D = (f"sha256:{c * 64}" for c in "abcd")
T0 = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
A_ACTIVE = T0 + timedelta(days=1)
B_CANARY = T0 + timedelta(days=9)
B_ACTIVE = T0 + timedelta(days=10)
ROLLBACK = T0 + timedelta(days=15)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
ALICE = Actor(principal="alice@example.internal", role="approver")
CAROL = Actor(principal="carol@example.internal", role="approver")


def timed(event: Any, when: datetime, actor: Actor | None = None) -> Any:
    changes: dict[str, Any] = {"occurred_at": when}
    if actor is not None:
        changes["actor"] = actor
    return dataclasses.replace(event, envelope=dataclasses.replace(event.envelope, **changes))


def sealed(events: list[Any]) -> list[Any]:
    chain: list[Any] = []
    prev_hash = GENESIS_HASH
    for seq, event in enumerate(events, start=FIRST_SEQ):
        chain.append(seal(event, seq=seq, prev_hash=prev_hash))
        prev_hash = chain[-1].envelope.hash
    return chain


def approved(
    adapter: str, revision: str, env: str, start: datetime, approver: Actor, *others: str
) -> list[Any]:
    """Registered, validated, evaluated and approved in `env`, an hour apart from `start`."""
    digest = revision.replace("sha256:", "")[:8]
    return [
        timed(lifecycle(RevisionRegistered, adapter, revision), start),
        timed(lifecycle(RevisionValidated, adapter, revision), start + HOUR),
        timed(
            lifecycle(
                RevisionEvaluated, adapter, revision, env, report_digest=f"sha256:report-{digest}"
            ),
            start + 2 * HOUR,
        ),
        timed(
            lifecycle(
                RevisionApproved,
                adapter,
                revision,
                env,
                approvers=[approver.principal, *others],
                manifest_digest=f"sha256:manifest-{digest}",
                report_digest=f"sha256:report-{digest}",
            ),
            start + 3 * HOUR,
            approver,
        ),
    ]


def summarizer_chain(name: str) -> list[Any]:
    """A active, B canaried then activated (A superseded), B rolled back to A."""
    return sealed(
        [
            *approved(name, REV_A, PROD, T0, ALICE),  # seq 1-4
            timed(lifecycle(RevisionActivated, name, REV_A, PROD), A_ACTIVE),  # 5
            *approved(name, REV_B, PROD, T0 + timedelta(days=5), CAROL, "dave@example.internal"),
            timed(lifecycle(CanaryStarted, name, REV_B, PROD, traffic_percent=10), B_CANARY),
            timed(
                lifecycle(RevisionActivated, name, REV_B, PROD, previous_revision=REV_A), B_ACTIVE
            ),
            timed(
                lifecycle(RevisionSuperseded, name, REV_A, PROD, superseded_by=REV_B),
                B_ACTIVE + SECOND,
            ),
            timed(
                lifecycle(RevisionRolledBack, name, REV_B, PROD, restored_revision=REV_A),
                ROLLBACK,
            ),
            timed(
                lifecycle(RevisionActivated, name, REV_A, PROD, previous_revision=REV_B),
                ROLLBACK + SECOND,
            ),  # 14
        ]
    )


def single_chain(name: str, revision: str, env: str, start: datetime) -> list[Any]:
    return sealed(
        [
            *approved(name, revision, env, start, ALICE),
            timed(lifecycle(RevisionActivated, name, revision, env), start + 4 * HOUR),
        ]
    )


@dataclasses.dataclass
class Scenario:
    infra: Infra
    topic: str
    summarizer: str
    classifier: str
    translator: str
    chain: list[Any]  # the summarizer's sealed events, seq 1 at index 0
    keys: Path  # the tests' log public key; no checkpoints (cold storage is empty)


def create_topic(infra: Infra, name: str) -> None:
    admin = admin_client(infra.kafka)
    for future in admin.create_topics([NewTopic(name, 3, 1)]).values():
        future.result()


def produce(infra: Infra, topic: str, records: list[tuple[int | None, Any, Any]]) -> None:
    """Publish in order like the relay (keyed by adapter, each event signed by the tests' log
    key, so only the chain can give a tampered copy away); a partition given is kept."""
    producer = make_producer(infra.kafka, partitioner="murmur2_random")
    for partition, key, value in records:
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        extra["headers"] = log_signed(CODEC.decode(value))
        producer.produce(topic, key=key, value=value, **extra)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def scenario(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    keys = tmp_path_factory.mktemp("audit-keys")
    token = uuid.uuid4().hex[:10]
    names = [f"{kind}-{token}" for kind in ("summarizer", "classifier", "translator")]
    summarizer, classifier, translator = names
    chains = [
        summarizer_chain(summarizer),
        single_chain(classifier, REV_C, PROD, T0 + timedelta(days=2)),
        single_chain(translator, REV_D, STAGING, T0 + timedelta(days=3)),
    ]
    topic = f"audit-{token}"
    create_topic(infra, topic)
    produce(
        infra,
        topic,
        [(None, e.envelope.adapter.encode(), CODEC.encode(e)) for c in chains for e in c],
    )
    return Scenario(infra, topic, summarizer, classifier, translator, chains[0], keys)


def adapterctl(
    scenario: Scenario, *argv: str, topic: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ADAPTERCTL), *argv, "--topic", topic or scenario.topic],
        env={
            **scenario.infra.env(),
            "LOG_PUBLIC_KEYS": str(write_test_log_key(scenario.keys)),
            "LOG_CHECKPOINTS": str(scenario.keys / "cold"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def as_json(scenario: Scenario, *argv: str) -> Any:
    result = adapterctl(scenario, *argv, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


# --- tampering with a copy of the topic ------------------------------------------------------

Tamper = Callable[[list[LogRecord], Scenario], tuple[list[LogRecord], str]]


def decode(record: LogRecord) -> Any:
    assert record.value is not None
    return CODEC.decode(record.value)


def index_of(records: list[LogRecord], adapter: str, seq: int) -> int:
    return next(
        i
        for i, r in enumerate(records)
        if r.key == adapter.encode() and decode(r).envelope.seq == seq
    )


def alter_approval(records: list[LogRecord], s: Scenario) -> tuple[list[LogRecord], str]:
    i = index_of(records, s.summarizer, 9)
    event = decode(records[i])
    forged = dataclasses.replace(event, approvers=["mallory@example.internal"])
    changed = dataclasses.replace(records[i], value=CODEC.encode(forged))
    return [*records[:i], changed, *records[i + 1 :]], event.envelope.event_id


def drop_canary(records: list[LogRecord], s: Scenario) -> tuple[list[LogRecord], str]:
    i = index_of(records, s.summarizer, 10)
    return records[:i] + records[i + 1 :], "missing seq 10"


def swap_registration(records: list[LogRecord], s: Scenario) -> tuple[list[LogRecord], str]:
    i, j = index_of(records, s.summarizer, 6), index_of(records, s.summarizer, 7)
    swapped = list(records)
    swapped[i], swapped[j] = records[j], records[i]
    return swapped, s.chain[5].envelope.event_id  # seq 6 now comes after seq 7


def inject_forged(records: list[LogRecord], s: Scenario) -> tuple[list[LogRecord], str]:
    i = index_of(records, s.summarizer, 5)
    fake = lifecycle(RevisionRolledBack, s.summarizer, REV_A, PROD, restored_revision=None)
    fake = seal(timed(fake, A_ACTIVE + HOUR), seq=6, prev_hash=s.chain[4].envelope.hash)
    fake = dataclasses.replace(fake, envelope=dataclasses.replace(fake.envelope, hash="0" * 64))
    injected = dataclasses.replace(records[i], value=CODEC.encode(fake))
    return [*records[: i + 1], injected, *records[i + 1 :]], fake.envelope.event_id


@pytest.mark.parametrize(
    "tamper",
    [alter_approval, drop_canary, swap_registration, inject_forged],
    ids=lambda t: t.__name__,
)
def test_verify_fails_on_a_tampered_copy_and_names_the_tampered_event(
    scenario: Scenario, tamper: Tamper
) -> None:
    original = read_topic(scenario.infra.kafka, scenario.topic)
    records, named = tamper(original, scenario)
    copy = f"{scenario.topic}-{tamper.__name__}"
    create_topic(scenario.infra, copy)
    produce(scenario.infra, copy, [(r.partition, r.key, r.value) for r in records])

    result = adapterctl(scenario, "audit", "verify", topic=copy)

    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stdout.split("First problem:")[1].split("All problems")[0]
    assert named in first, result.stdout
    assert scenario.summarizer in first and f"{copy}[" in first


def test_verify_passes_the_clean_log(scenario: Scenario) -> None:
    result = adapterctl(scenario, "audit", "verify")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK  {scenario.topic}: 24 events from 3 adapters")


def test_verify_json_reports_the_clean_log(scenario: Scenario) -> None:
    report = adapterctl(scenario, "audit", "verify", "--json")

    assert report.returncode == 0
    parsed = json.loads(report.stdout)
    assert parsed["ok"] is True and parsed["events"] == 24 and parsed["problems"] == []


def active_at(scenario: Scenario, when: datetime) -> dict[str, Any]:
    argv = ("audit", "at", "--time", when.isoformat(), "--environment", PROD, "--json")
    result = adapterctl(scenario, *argv)
    answer = json.loads(result.stdout)
    served = any(a["active"] or a["canary"] for a in answer["adapters"])
    assert result.returncode == (0 if served else 1), result.stderr  # 1: nothing served then
    return {a["adapter"]: a for a in answer["adapters"]}


@pytest.mark.parametrize(
    ("when", "active", "canary"),
    [
        (A_ACTIVE - HOUR, None, None),
        (A_ACTIVE + HOUR, REV_A, None),
        (B_CANARY + HOUR, REV_A, REV_B),
        (B_ACTIVE + HOUR, REV_B, None),
        (ROLLBACK + HOUR, REV_A, None),
    ],
    ids=[
        "before-activation",
        "after-first-activation",
        "during-canary",
        "after-supersede",
        "after-rollback",
    ],
)
def test_at_answers_the_revision_active_in_production(
    scenario: Scenario, when: datetime, active: str | None, canary: str | None
) -> None:
    summarizer = active_at(scenario, when)[scenario.summarizer]

    assert (summarizer["active"] or {}).get("revision") == active
    assert (summarizer["canary"] or {}).get("revision") == canary


def test_at_names_who_approved_the_active_revision_and_on_what_evidence(
    scenario: Scenario,
) -> None:
    adapters = active_at(scenario, B_ACTIVE + HOUR)
    active = adapters[scenario.summarizer]["active"]

    assert active["since"] == B_ACTIVE.isoformat().replace("+00:00", "Z")
    assert active["approval"]["approvers"] == [CAROL.principal, "dave@example.internal"]
    assert active["approval"]["actor"] == {"principal": CAROL.principal, "role": "approver"}
    assert active["approval"]["manifest_digest"] == "sha256:manifest-bbbbbbbb"
    assert active["approval"]["report_digest"] == "sha256:report-bbbbbbbb"
    assert active["evaluation"]["report_digest"] == "sha256:report-bbbbbbbb"
    assert active["approval_matches_evaluation"] is True
    assert adapters[scenario.classifier]["active"]["revision"] == REV_C
    assert scenario.translator not in adapters  # it only ever ran in staging


def test_at_after_the_rollback_dates_the_restored_revision_and_its_original_approval(
    scenario: Scenario,
) -> None:
    active = active_at(scenario, ROLLBACK + HOUR)[scenario.summarizer]["active"]

    assert active["since"] == (ROLLBACK + SECOND).isoformat().replace("+00:00", "Z")
    assert active["approval"]["approvers"] == [ALICE.principal]


def test_at_prints_a_readable_answer(scenario: Scenario) -> None:
    result = adapterctl(
        scenario, "audit", "at", "--time", (B_ACTIVE + HOUR).isoformat(),
        "--environment", PROD, "--adapter", scenario.summarizer,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert f"active           {REV_B}" in result.stdout
    assert f"approved by      {CAROL.principal} (approver)" in result.stdout


def test_history_lists_the_adapters_timeline(scenario: Scenario) -> None:
    history = as_json(scenario, "history", scenario.summarizer)

    assert [e["seq"] for e in history["events"]] == list(range(1, 15))
    assert [e["event"] for e in history["events"]][-3:] == [
        "RevisionSuperseded",
        "RevisionRolledBack",
        "RevisionActivated",
    ]
    table = adapterctl(scenario, "history", scenario.summarizer)
    assert table.returncode == 0 and "RevisionRolledBack" in table.stdout


def test_replay_json_rebuilds_every_pointer(scenario: Scenario) -> None:
    replay = as_json(scenario, "audit", "replay")

    pointers = {(p["adapter"], p["environment"]): p for p in replay["pointers"]}
    assert pointers[scenario.summarizer, PROD]["active"] == REV_A
    assert pointers[scenario.classifier, PROD]["active"] == REV_C
    assert pointers[scenario.translator, STAGING]["active"] == REV_D
    assert len(replay["revisions"]) == 4


def test_an_unreachable_broker_exits_two_with_one_clear_line(scenario: Scenario) -> None:
    result = subprocess.run(
        [str(ADAPTERCTL), "audit", "verify", "--bootstrap", "127.0.0.1:1", "--timeout", "2"],
        env=scenario.infra.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_a_missing_topic_exits_two_and_is_not_created(scenario: Scenario) -> None:
    missing = f"{scenario.topic}-missing"

    result = adapterctl(scenario, "audit", "verify", topic=missing)

    assert result.returncode == 2 and "does not exist" in result.stderr
    topics = admin_client(scenario.infra.kafka).list_topics(timeout=10).topics
    assert missing not in topics
