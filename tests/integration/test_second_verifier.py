"""Differential testing of the two verifiers (issue #21): ours (`adapterctl audit`) and the
independent one written from `docs/log-format.md` alone (`verifiers/java/logcheck`, Java,
Apache Avro, kafka-clients). On every generated log, clean and tampered in each way an
insider can, both must report the same problems at the same records, the same counts and
the same unanchored events, and both must catch what each tampering did. A disagreement
fails the build and names the event.

The logs the rest of the suite produces on real Kafka (the signed-log drills, the demo)
are compared in their own tests with `tests.verifiers`.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests import logcases
from tests.verifiers import (
    LOGCHECK,
    REPO,
    assert_agree,
    build_logcheck,
    run_logcheck,
    run_ours,
    served_normalised,
)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_logcheck()
    root = tmp_path_factory.mktemp("logcases")
    logcases.write_keys(root / "keys")
    return root


def test_the_vectors_pass_in_the_second_verifier(cases: Path) -> None:
    done = subprocess.run(
        [str(LOGCHECK), "vectors", str(REPO / "tests/data/log-format/vectors-v1.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout


@pytest.mark.parametrize("name", sorted(logcases.CASES))
def test_both_verifiers_agree_event_for_event_and_catch_the_tampering(
    cases: Path, name: str
) -> None:
    folder = logcases.write_bundle(cases / name, logcases.build(name))
    log_key, approval_key = cases / "keys" / "log.pub", cases / "keys" / "approval.pub"
    status, ours = run_ours(
        "audit", "verify", "--bundle", str(folder),
        "--log-key", str(log_key), "--public-key", str(approval_key),
    )  # fmt: skip
    their_status, theirs = run_logcheck(
        "verify", "--bundle", str(folder),
        "--log-key", str(log_key), "--approval-key", str(approval_key),
    )  # fmt: skip

    assert_agree(ours, theirs)
    assert status == their_status
    _, expected = logcases.CASES[name]
    found = {p["code"] for p in ours["problems"]}
    if expected:
        assert status == 1 and expected <= found, (expected, ours["problems"])
    else:
        assert status == 0, ours["problems"]


@pytest.mark.parametrize("name", ["clean", "rewritten-middle", "forged-rotated-out-key"])
def test_both_agree_when_every_signature_is_checked(cases: Path, name: str) -> None:
    folder = logcases.write_bundle(cases / f"every-{name}", logcases.build(name))
    log_key = str(cases / "keys" / "log.pub")
    _, ours = run_ours(
        "audit", "verify", "--bundle", str(folder), "--log-key", log_key, "--every-signature"
    )
    _, theirs = run_logcheck(
        "verify", "--bundle", str(folder), "--log-key", log_key, "--every-signature"
    )
    assert_agree(ours, theirs)


def test_both_pass_a_forged_event_when_told_to_check_the_chains_alone(cases: Path) -> None:
    """--unsigned is the chain alone, and says so: the forgery with recomputed hashes that
    the signatures catch passes; and neither verifier drops to it without being told."""
    folder = logcases.write_bundle(cases / "unsigned", logcases.build("forged-unsigned"))
    status, ours = run_ours("audit", "verify", "--bundle", str(folder), "--unsigned")
    their_status, theirs = run_logcheck("verify", "--bundle", str(folder), "--unsigned")

    assert_agree(ours, theirs)
    assert (status, their_status) == (0, 0) and not theirs["signatures_checked"]
    refused = subprocess.run(
        [str(LOGCHECK), "verify", "--bundle", str(folder)], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--log-key" in refused.stderr


def test_both_name_a_damaged_bundle_file_by_file(cases: Path) -> None:
    folder = logcases.write_bundle(cases / "damaged", logcases.history())
    (folder / "checkpoints" / logcases.TOPIC / "000000000001.json").write_text("{}\n")
    (folder / "keys" / "extra.pem").write_text("added later\n")
    log_key = str(cases / "keys" / "log.pub")
    _, ours = run_ours("audit", "verify", "--bundle", str(folder), "--log-key", log_key)
    _, theirs = run_logcheck("verify", "--bundle", str(folder), "--log-key", log_key)

    assert_agree(ours, theirs)
    damaged = {p["position"]["topic"] for p in ours["problems"] if p["code"] == "bundle_damaged"}
    assert damaged == {f"checkpoints/{logcases.TOPIC}/000000000001.json", "keys/extra.pem"}


@pytest.mark.parametrize(
    ("hours", "environment"),
    [(6, "production"), (20, "production"), (30, "production"), (60, "production"),
     (12, "staging"), (60, "staging")],
)  # fmt: skip
def test_both_answer_what_served_when_and_approved_by_whom(
    cases: Path, hours: int, environment: str
) -> None:
    folder = cases / "clean-at"
    if not folder.exists():
        logcases.write_bundle(folder, logcases.build("clean"))
    moment = (logcases.START + timedelta(hours=hours)).isoformat()
    argv = ("--bundle", str(folder), "--time", moment, "--environment", environment)
    status, ours = run_ours("audit", "at", *argv)
    their_status, theirs = run_logcheck("at", *argv)

    assert served_normalised(ours) == served_normalised(theirs)
    assert status == their_status


def test_neither_answers_what_served_from_a_log_that_does_not_replay(cases: Path) -> None:
    folder = logcases.write_bundle(cases / "illegal-at", logcases.build("illegal-transition"))
    moment = (logcases.START + timedelta(days=30)).isoformat()
    argv = ("--bundle", str(folder), "--time", moment, "--environment", "staging")
    status, ours = run_ours("audit", "at", *argv)
    their_status, theirs = run_logcheck("at", *argv)
    assert (status, ours, their_status, theirs) == (1, None, 1, None)
