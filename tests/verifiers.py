"""Both verifiers of the lifecycle log, side by side: ours (`adapterctl audit`) and the
independent one written from `docs/log-format.md` alone (`verifiers/java/logcheck`).

`verdicts(...)` runs each on the same log and reduces what they say to what the format
fixes (§10): the problems as (code, place), the counts, the checkpoints, the unanchored
events. Messages are free text and not compared. A difference is a bug in one of them or
a hole in the specification, and `assert_agree` names the event it concerns.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

from adapterctl.main import main as adapterctl

REPO = Path(__file__).resolve().parent.parent
LOGCHECK = REPO / "verifiers" / "java" / "logcheck"
BUILD = REPO / "verifiers" / "java" / "build.sh"
_POSITION = re.compile(r"^(?P<topic>.*)\[(?P<partition>\d+)\]@(?P<offset>\d+)$")


def build_logcheck() -> None:
    """Build the Java verifier (cached: a no-op when its sources and jars are current)."""
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise AssertionError(f"verifiers/java/build.sh failed:\n{done.stdout}\n{done.stderr}")


def run_logcheck(*args: str, timeout: float = 300) -> tuple[int, Any]:
    done = subprocess.run(
        [str(LOGCHECK), *args, "--json"], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode not in (0, 1):
        raise AssertionError(f"logcheck {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def run_ours(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    out, err = io.StringIO(), io.StringIO()
    # In process: leave structlog as the test session configured it (capture_logs).
    quiet = mock.patch("adapterctl.main.configure_logging")
    with quiet, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = adapterctl([*args, "--json"], env=env or {})
    if code not in (0, 1):
        raise AssertionError(f"adapterctl {' '.join(args)} exited {code}: {err.getvalue()}")
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else None


def ours_normalised(report: dict[str, Any]) -> dict[str, Any]:
    """`adapterctl audit verify --json`, reduced to what the format fixes."""
    topic = report["topic"]

    def place(position: dict[str, Any]) -> tuple[Any, ...]:
        if position["topic"] == topic:
            return ("record", position["partition"], position["offset"])
        return ("file", position["topic"])

    def at(text: str) -> tuple[int, int]:
        found = _POSITION.match(text)
        assert found, text
        return int(found["partition"]), int(found["offset"])

    return _verdict(
        report,
        sorted((p["code"], *place(p["position"])) for p in report["problems"]),
        [(u["adapter"], u["seq"], *at(u["position"])) for u in report.get("unanchored", [])],
    )


def theirs_normalised(report: dict[str, Any]) -> dict[str, Any]:
    """`logcheck verify --json`, reduced the same way."""

    def place(problem: dict[str, Any]) -> tuple[Any, ...]:
        if "partition" in problem:
            return ("record", problem["partition"], problem["offset"])
        return ("file", problem.get("checkpoint") or problem["file"])

    return _verdict(
        report,
        sorted((p["code"], *place(p)) for p in report["problems"]),
        [(u["adapter"], u["seq"], u["partition"], u["offset"]) for u in report["unanchored"]],
    )


def _verdict(
    report: dict[str, Any], problems: list[tuple[Any, ...]], unanchored: list[tuple[Any, ...]]
) -> dict[str, Any]:
    return {
        "ok": report["ok"],
        "events": report["events"],
        "duplicates": report["duplicates"],
        "adapters": report["adapters"],
        "signatures_checked": report["signatures_checked"],
        "checkpoints": report.get("checkpoints", 0),
        "latest_checkpoint": report.get("latest_checkpoint", 0),
        "unanchored": unanchored,
        "problems": problems,
    }


def assert_agree(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Fail naming every problem one verifier reports and the other does not."""
    mine, other = ours_normalised(ours), theirs_normalised(theirs)
    only_ours = sorted(set(mine["problems"]) - set(other["problems"]))
    only_theirs = sorted(set(other["problems"]) - set(mine["problems"]))
    where = {(p["position"]["partition"], p["position"]["offset"]): p for p in ours["problems"]} | {
        (p.get("partition"), p.get("offset")): p for p in theirs["problems"]
    }

    def named(problem: tuple[Any, ...]) -> str:
        if problem[1] != "record":
            return f"{problem[0]} at {problem[2]}"
        p = where.get((problem[2], problem[3]), {})
        return (
            f"{problem[0]} at partition {problem[2]} offset {problem[3]} "
            f"(adapter {p.get('adapter')!r}, seq {p.get('seq')}, event {p.get('event_id')})"
        )

    lines = [f"only ours: {named(p)}" for p in only_ours]
    lines += [f"only logcheck: {named(p)}" for p in only_theirs]
    for field in (
        "ok",
        "events",
        "duplicates",
        "adapters",
        "signatures_checked",
        "checkpoints",
        "latest_checkpoint",
        "unanchored",
    ):
        if mine[field] != other[field]:
            lines.append(f"{field}: ours {mine[field]!r}, logcheck {other[field]!r}")
    assert not lines, "the verifiers disagree:\n  " + "\n  ".join(lines)


def served_normalised(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    """`audit at --json` of either verifier: per adapter, who was active and canary, the
    rollback target, and the approval behind each (event id, approvers)."""

    def side(which: dict[str, Any] | None) -> tuple[Any, ...] | None:
        if which is None:
            return None
        approval = which.get("approval")
        return (
            which["revision"],
            which.get("traffic_percent"),
            None if approval is None else (approval["event_id"], tuple(approval["approvers"])),
        )

    return [
        (a["adapter"], side(a["active"]), side(a["canary"]), a["rollback_target"])
        for a in answer["adapters"]
    ]
