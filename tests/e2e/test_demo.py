"""The README's main command, run as a newcomer runs it: the whole release train, every
service its own process, real adapters, ending with a verified audit log."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, Infra
from tests.verifiers import assert_agree, run_logcheck, run_ours


def test_the_demo_runs_the_whole_journey_to_a_verified_audit_log(infra: Infra) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "infra" / "demo.py")],
        cwd=REPO,
        env=infra.env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    for milestone in (
        "RevisionEvaluated/production",
        "CanaryStarted(20) -> CanaryExpanded(50) -> RevisionActivated()",
        "RevisionEvaluationFailed/production",
        "rolled back",
        "WeightsDeleted",
        "every decision signed by a trusted key",
        "logcheck-java",  # the second verifier's verdict on the exported bundle
        "Summary for",
    ):
        assert milestone in output, f"missing {milestone!r}:\n{output[-8000:]}"
    # The demo's log, exported: both verifiers agree on it, event for event.
    kit = REPO / output.split("(bundle: ", 1)[1].split(")", 1)[0]
    demo = REPO / "var" / "demo"
    keys = ("--log-key", str(demo / "log.key.pub"))
    _, ours = run_ours("audit", "verify", "--bundle", str(kit), *keys)
    _, theirs = run_logcheck("verify", "--bundle", str(kit), *keys)
    assert_agree(ours, theirs)
    assert ours["ok"] and ours["checkpoints"] >= 1, ours["problems"]
    # Every pipeline service's /metrics counted the events it handled during the journey.
    for service in ("ingest", "validator", "gpu_evaluator", "approval", "activator", "archiver"):
        line = next((x for x in output.splitlines() if f"metrics {service} " in x), "")
        handled = line.split("handled ", 1)[1].split(",")[0] if "handled " in line else "0"
        assert float(handled) > 0, f"{service}: {line!r}"
