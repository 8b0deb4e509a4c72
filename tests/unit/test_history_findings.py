"""`adapterctl history` shows every finding in full (code, message, expected and found,
the rest of the evidence, the fix) and `--json` carries them as objects; every lifecycle
event type has a detail line (a quarantine once raised a KeyError)."""

from __future__ import annotations

import json
import typing

import pytest

from adapterctl.history import DETAILS, _detail
from shared.events import (
    Finding,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionValidated,
)
from shared.findings import FindingCode, fix_for
from shared.lifecycle import LifecycleEvent
from tests.factories import lifecycle
from tests.samples import sample
from tests.unit.test_audit import REV_A, REV_B, record, sealed
from tests.unit.test_audit_cli import run

ADAPTER = "gamma-bot"
RANK = Finding(
    code=FindingCode.RANK_EXCEEDS_ENVIRONMENT,
    severity="error",
    message="rank 64 is above staging's max 16",
    evidence={"expected": "r <= 16", "found": "r = 64", "environment": "staging"},
)
CHANGED = Finding(
    code=FindingCode.ARTIFACT_CHANGED,
    severity="error",
    message="adapter_model.safetensors no longer hashes to the manifest",
    evidence={"path": "adapter_model.safetensors"},
)


@pytest.mark.parametrize("event_type", typing.get_args(LifecycleEvent))
def test_every_lifecycle_event_type_has_a_detail_line(event_type: type) -> None:
    assert event_type in DETAILS
    assert isinstance(_detail(sample(event_type)), str)


def log() -> list[object]:
    events = [
        lifecycle(RevisionRegistered, ADAPTER, REV_A),
        lifecycle(RevisionRejected, ADAPTER, REV_A, findings=[RANK]),
        lifecycle(RevisionRegistered, ADAPTER, REV_B),
        lifecycle(RevisionValidated, ADAPTER, REV_B, findings=[]),
        lifecycle(RevisionQuarantined, ADAPTER, REV_B, findings=[CHANGED]),
    ]
    return [record(e, 0) for e in sealed(events)]


def test_history_prints_every_finding_in_full_with_its_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "history", ADAPTER, records=log())  # type: ignore[arg-type]
    assert code == 0, out
    assert "1 finding: rank_exceeds_environment" in out  # the table's detail
    findings = out.split("\nfindings:\n", 1)[1]
    assert f"seq 2 RevisionRejected, revision {REV_A}:" in findings
    for line in (
        "- rank_exceeds_environment (error): rank 64 is above staging's max 16",
        "expected: r <= 16",
        "found: r = 64",
        "environment: staging",
        f"fix: {fix_for(RANK.code)}",
        f"seq 5 RevisionQuarantined, revision {REV_B}:",
        "- artifact_changed (error): adapter_model.safetensors no longer hashes",
        f"fix: {fix_for(CHANGED.code)}",
    ):
        assert line in findings, findings


def test_history_json_carries_the_findings_as_objects(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "history", ADAPTER, "--json", records=log())  # type: ignore[arg-type]
    events = json.loads(out)["events"]
    assert code == 0 and [len(e["findings"]) for e in events] == [0, 1, 0, 0, 1]
    assert events[1]["findings"][0] == {
        "code": "rank_exceeds_environment",
        "severity": "error",
        "message": RANK.message,
        "evidence": RANK.evidence,
        "meaning": events[1]["findings"][0]["meaning"],
        "fix": fix_for(RANK.code),
    }
    assert events[1]["findings"][0]["meaning"]
