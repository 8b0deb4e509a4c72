"""`adapterctl` over an in-memory log: exit codes, what it prints, and its help and errors."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from adapterctl.main import main
from adapterctl.source import Reader
from shared.kafka.auth import KafkaEndpoint
from shared.kafka.reader import LogRecord
from tests.factories import log_signed, write_test_log_key
from tests.unit.test_audit import (
    ALPHA,
    BETA,
    PROD,
    REV_A,
    REV_B,
    REV_C,
    Record,
    alter,
    clean_log,
    decode,
    index_of,
    swap,
)

_KEYS = Path(tempfile.mkdtemp(prefix="audit-cli-"))
# The tests' log key, and a cold storage without checkpoints.
SIGNED = {"LOG_PUBLIC_KEYS": str(write_test_log_key(_KEYS)), "LOG_CHECKPOINTS": str(_KEYS)}


def reader_of(records: list[Record]) -> Reader:
    """What `iter_topic` would yield for these records: partition by partition, in order,
    each signed as the relay signs (so only the chain can give a tampered log away)."""

    def read(bootstrap: str, topic: str, timeout_s: float) -> Iterator[LogRecord]:
        offsets: dict[int, int] = {}
        for r in sorted(records, key=lambda r: r.partition):
            offset = offsets[r.partition] = offsets.get(r.partition, -1) + 1
            key = None if r.key is None else r.key.encode()
            headers = tuple(log_signed(decode(r))) if r.value else ()
            yield LogRecord(topic, r.partition, offset, 0, key, r.value, headers)

    return read


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, records: list[Record] | None = None
) -> tuple[int, str, str]:
    """adapterctl over `records` (default: a fresh clean log, with fresh event ids)."""
    code = main(
        list(argv), reader=reader_of(clean_log() if records is None else records), env=SIGNED
    )
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, **kw: Any) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv, "--json", **kw)
    return code, json.loads(out)


def test_verify_exits_zero_and_says_ok_on_a_clean_log(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "audit", "verify")

    assert code == 0 and out.startswith("OK") and err == ""
    assert "19 events from 2 adapters" in out


def test_verify_exits_one_and_names_the_altered_event_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = clean_log()
    altered = decode(records[index_of(records, ALPHA, 9)]).envelope.event_id

    code, out, _ = run(capsys, "audit", "verify", records=alter(ALPHA, 9)(records))

    assert code == 1 and out.startswith("FAILED")
    first = out.split("First problem:")[1].split("All problems")[0]
    assert altered in first and "adapters.lifecycle.v1[0]@8" in first
    assert "partition 0, offset 8" in first and "hash_mismatch" in first


def test_verify_json_carries_every_problem_with_its_position(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_json(capsys, "audit", "verify", records=swap(ALPHA, 6)(clean_log()))

    assert code == 1 and report["ok"] is False
    assert report["first_problem"] == report["problems"][0]
    problem = report["problems"][0]
    assert problem["code"] == "reordered" and problem["seq"] == 6
    assert problem["position"] == {"topic": "adapters.lifecycle.v1", "partition": 0, "offset": 6}


def test_replay_rebuilds_states_and_pointers(capsys: pytest.CaptureFixture[str]) -> None:
    code, replay = run_json(capsys, "audit", "replay")

    assert code == 0 and replay["ok"] is True
    pointers = {(p["adapter"], p["environment"]): p for p in replay["pointers"]}
    assert pointers[ALPHA, PROD]["active"] == REV_A
    assert pointers[ALPHA, PROD]["rollback_target"] is None  # the rollback consumed it
    assert pointers[BETA, "staging"]["active"] == REV_C
    states = {(r["adapter"], r["revision"]): r["environments"] for r in replay["revisions"]}
    assert states[ALPHA, REV_B] == {PROD: "rolled_back"}


def test_replay_table_lists_revisions_and_pointers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "replay")

    assert code == 0 and "log verified" in out
    assert "production=rolled_back" in out and "ROLLBACK TARGET" in out


@pytest.mark.parametrize(
    ("moment", "active", "canary"),
    [
        ("2025-01-01T04:30:00Z", None, None),  # approved, not yet active
        ("2025-01-01T05:00:00Z", REV_A, None),  # the instant of activation counts
        ("2025-01-01T10:30:00+00:00", REV_A, REV_B),  # B on canary beside A
        ("2025-01-01T12:30:00+01:00", REV_B, None),  # 11:30 UTC: B active
        ("2025-01-01T15:00:00Z", REV_A, None),  # after the rollback
    ],
)
def test_at_answers_what_was_active_and_canary_at_a_moment(
    capsys: pytest.CaptureFixture[str], moment: str, active: str | None, canary: str | None
) -> None:
    code, answer = run_json(capsys, "audit", "at", "--time", moment, "--environment", PROD)

    assert code == (0 if active or canary else 1)  # 1: nothing served there then
    [alpha] = answer["adapters"]
    assert (alpha["active"] or {}).get("revision") == active
    assert (alpha["canary"] or {}).get("revision") == canary


def test_at_names_the_approval_and_evaluation_behind_the_active_revision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = clean_log()
    approval = decode(records[index_of(records, ALPHA, 9)])

    _, answer = run_json(
        capsys,
        *("audit", "at", "--time", "2025-01-01T12:00:00Z", "--environment", PROD),
        records=records,
    )

    active = answer["adapters"][0]["active"]
    assert active["since"] == "2025-01-01T11:00:00Z"
    assert active["approval"]["event_id"] == approval.envelope.event_id
    assert active["approval"]["approvers"] == approval.approvers
    assert active["approval"]["actor"] == {"principal": "bob@example.internal", "role": "approver"}
    assert active["approval"]["manifest_digest"] == approval.manifest_digest
    assert active["evaluation"]["report_digest"] == approval.report_digest
    assert active["approval_matches_evaluation"] is True
    assert [m["name"] for m in active["evaluation"]["metrics"]] == ["rougeL", "p95_latency_ms"]


def test_at_prints_readable_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "audit", "at", "--time", "2025-01-01T12:00:00Z", "--environment", PROD
    )

    assert code == 0 and f"active           {REV_B}" in out
    assert "approved by      bob@example.internal (approver)" in out
    assert "rougeL 0.4217 vs 0.4031 (>= baseline) pass" in out


def test_at_refuses_a_time_without_timezone(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "audit", "at", "--time", "2025-01-01T12:00:00", "--environment", PROD
    )

    assert code == 2 and out == ""
    assert "no timezone" in err and "2025-01-01T12:00:00Z" in err


def test_at_says_when_the_adapter_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "audit", "at", "--time", "2025-01-02T00:00:00Z", "--environment", PROD,
        "--adapter", "nobody",
    )  # fmt: skip

    assert code == 1 and "'nobody' has no events" in err


def test_history_lists_each_event_of_one_adapter_once(capsys: pytest.CaptureFixture[str]) -> None:
    records = clean_log()
    records.append(records[index_of(records, ALPHA, 14)])  # a republished duplicate

    code, history = run_json(capsys, "history", ALPHA, records=records)

    assert code == 0 and history["verified"] is True
    assert [e["seq"] for e in history["events"]] == list(range(1, 15))
    assert history["events"][12]["event"] == "RevisionRolledBack"
    assert history["events"][12]["actor"] == {"principal": "svc-registry", "role": "service"}


def test_history_table_shows_time_event_and_detail(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "history", BETA)

    assert code == 0 and "beta in adapters.lifecycle.v1: 5 events" in out
    assert "2025-01-01T04:00:00Z  RevisionApproved" in out


def test_history_of_an_unknown_adapter_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "history", "nobody")

    assert code == 1 and out == "" and "alpha, beta" in err


@pytest.mark.parametrize(
    "argv",
    [["audit", "verify"], ["audit", "replay"], ["audit", "at"], ["history"], ["audit"], []],
)
def test_every_command_has_help_with_an_example(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, _ = run(capsys, *argv, "--help")

    assert code == 0 and "examples:\n  adapterctl " in out


def test_a_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)

    assert code == 2 and "usage: adapterctl" in err


def test_an_unreachable_broker_exits_two_and_says_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def unreachable(bootstrap: str, topic: str, timeout_s: float) -> Iterator[LogRecord]:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))

    code = main(["audit", "verify", "--bootstrap", "nowhere:9092"], reader=unreachable, env={})
    out, err = capsys.readouterr()

    assert code == 2 and out == ""
    assert "nowhere:9092" in err and "KAFKA_BOOTSTRAP_SERVERS" in err


def test_topic_bootstrap_and_principal_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen: list[tuple[str, str | None, str | None, str]] = []

    def read(kafka: KafkaEndpoint, topic: str, timeout_s: float) -> Iterator[LogRecord]:
        seen.append((kafka.bootstrap_servers, kafka.username, kafka.password, topic))
        return iter(())

    secret = tmp_path / "auditor.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092", "LIFECYCLE_TOPIC": "audit.copy"}
    sasl = {"KAFKA_SASL_USERNAME": "auditor", "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    assert main(["audit", "verify"], reader=read, env=env | SIGNED) == 0
    assert main(["audit", "verify", "--topic", "other"], reader=read, env=env | sasl | SIGNED) == 0
    assert seen == [
        ("kafka-1:9092", None, None, "audit.copy"),
        ("kafka-1:9092", "auditor", "s3cret", "other"),
    ]
    capsys.readouterr()


def test_a_password_file_others_can_read_is_refused_with_its_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = tmp_path / "auditor.password"
    secret.write_text("s3cret")
    secret.chmod(0o644)
    env = {"KAFKA_SASL_USERNAME": "auditor", "KAFKA_SASL_PASSWORD_FILE": str(secret)}

    assert main(["audit", "verify"], reader=lambda *_: iter(()), env=env) == 2
    assert f"{secret} is readable by others" in capsys.readouterr().err
