"""How `adapterctl rollout list|status` and `env replicas --add/--remove` show and change
things: table cells from the activator's JSON, one status line per environment, when a
watched rollout has ended, and the edited replica list."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from adapterctl import rollout
from adapterctl.main import build_parser
from adapterctl.rollout_view import (
    analysis_line,
    canary_cells,
    canary_table,
    digest,
    edited_replicas,
    ended,
    status_lines,
    versus,
    wait,
    watched,
)
from shared.settings import KernelSettings

CANARY, STABLE = "sha256:" + "c" * 64, "sha256:" + "a" * 64
PROGRESS = {
    "adapter": "chat",
    "environment": "prod",
    "revision": CANARY,
    "step": 1,
    "steps": 3,
    "traffic_percent": 10,
    "samples": 3,
    "min_samples": 50,
    "error_rate": 0.0,
    "error_rate_limit": 0.05,
    "p95_ms": 120.4,
    "p95_limit_ms": None,
    "next_step_in_s": 45.2,
    "verdict": "hold",
    "reason": "waiting for samples: 3 of 50",
}


@pytest.mark.parametrize(
    ("value", "limit", "percent", "shown"),
    [
        (0.0123, 0.05, True, "1.2% / 5.0%"),
        (None, 0.05, True, "- / 5.0%"),
        (120.4, 300.0, False, "120ms / 300ms"),
        (120.4, None, False, "120ms / -"),
        (None, None, False, "-"),
    ],
)
def test_a_value_is_shown_against_its_limit(
    value: float | None, limit: float | None, percent: bool, shown: str
) -> None:
    assert versus(value, limit, percent=percent) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "now"), (-3, "now"), (0.2, "1s"), (45.2, "46s"), (245, "4m05s")]
)
def test_the_wait_before_the_next_step_reads_in_seconds_and_minutes(
    seconds: float, shown: str
) -> None:
    assert wait(seconds) == shown


def test_a_canary_row_shows_every_column_and_its_reason_below() -> None:
    assert canary_cells(PROGRESS) == (
        "chat",
        "prod",
        "cccccccccccc",
        "1/3",
        "10%",
        "3/50",
        "0.0% / 5.0%",
        "120ms / -",
        "46s",
        "hold",
    )
    assert canary_cells({**PROGRESS, "step": None})[3] == "-/3"
    assert "    waiting for samples: 3 of 50" in canary_table([PROGRESS]).splitlines()
    assert canary_table([]) == "no canary in progress"
    assert digest(None) == "-"


def state(*pointers: dict[str, Any], canaries: list[dict[str, Any]] | None = None) -> Any:
    return {"pointers": list(pointers), "canaries": canaries or [], "outcomes": []}


def pointer(env: str, active: str, canary: str | None = None, percent: int = 0) -> Any:
    return {"environment": env, "active": active, "canary": canary, "canary_percent": percent}


RUNNING = state(pointer("prod", STABLE, CANARY, 10), pointer("staging", CANARY))


@pytest.mark.parametrize(
    ("now", "result"),
    [
        (RUNNING, None),  # still a canary
        (state(pointer("prod", STABLE, CANARY, 50)), None),  # expanded: still running
        (state(pointer("prod", CANARY)), 0),  # promoted: active now
        (state(pointer("prod", STABLE, CANARY, 100)), 0),  # at every request
        (state(pointer("prod", STABLE)), 1),  # rolled back or aborted
        (state(pointer("prod", STABLE, "sha256:" + "d" * 64, 10)), 1),  # replaced
        (state(), 1),  # its pointer is gone
    ],
)
def test_a_watched_rollout_ends_promoted_0_or_rolled_back_1(
    now: dict[str, Any], result: int | None
) -> None:
    assert watched(RUNNING) == {"prod": CANARY}
    assert ended(watched(RUNNING), now) == result


def test_one_status_line_per_environment_carries_its_verdict() -> None:
    decided = {"environment": "prod", "last_decision": {"decision": "hold", "reason": "wait"}}
    lines = status_lines(state(*RUNNING["pointers"], canaries=[decided]))
    assert lines == {
        "prod": "prod: active aaaaaaaaaaaa, canary cccccccccccc at 10%: hold (wait)",
        "staging": "staging: active cccccccccccc",
    }


@pytest.mark.parametrize(
    ("add", "remove", "expected"),
    [
        (["http://c:8000"], [], ["http://a:8000", "http://b:8000", "http://c:8000"]),
        ([], ["http://a:8000/"], ["http://b:8000"]),  # a trailing slash does not count
        (["http://b:8000"], [], ["http://a:8000", "http://b:8000"]),  # listed already
        (["http://c:8000"], ["http://a:8000"], ["http://b:8000", "http://c:8000"]),
    ],
)
def test_add_and_remove_change_the_replica_list_as_it_stands(
    add: list[str], remove: list[str], expected: list[str]
) -> None:
    assert edited_replicas(["http://a:8000", "http://b:8000"], add, remove) == expected


def test_removing_a_replica_that_is_not_listed_is_refused() -> None:
    with pytest.raises(ValueError, match="not a replica of the environment: http://z"):
        edited_replicas(["http://a:8000"], [], ["http://z"])


def test_env_replicas_add_puts_the_edited_list_to_the_activator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = ["http://a:8000", "http://b:8000"]
    puts: list[dict[str, Any]] = []

    def get(url: str) -> dict[str, Any]:
        assert url.endswith("/environments/prod/replicas")
        return {"replicas": list(stored)}

    def change(method: str, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        puts.append(body)
        stored[:] = body["urls"]
        return {"outcome": "committed", "action": "env.replicas", "detail": "ok"}

    monkeypatch.setattr(rollout, "get", get)
    monkeypatch.setattr(rollout, "change", change)
    parser = build_parser(KernelSettings.from_env("adapterctl", {}))
    edit = ["--add", "http://c:8000", "--remove", "http://a:8000", "--token", "t"]
    args: argparse.Namespace = parser.parse_args(["env", "replicas", "prod", *edit])

    assert args.run(args, None) == 0

    assert puts == [{"urls": ["http://b:8000", "http://c:8000"]}]
    assert capsys.readouterr().out == "http://b:8000\nhttp://c:8000\n"


@pytest.mark.parametrize(
    ("evidence", "line"),
    [
        ({"operator": "olive"}, None),
        ({}, None),
        (
            {
                "decision": "expand",
                "next_percent": "50",
                "canary.requests": "60",
                "min_samples": "20",
                "canary.error_rate": "0.0",
                "limit.error_rate": "0.05",
                "canary.p95_ms": "80",
                "limit.p95_ms": "none",
                "observed_s": "30.4",
                "step_interval_s": "60",
            },
            "expand -> 50%: 60 of 20 samples, errors 0.0% / 5.0%, p95 80ms / -, "
            "observed 30s of 60s",
        ),
        (
            {
                "decision": "roll_back",
                "canary.requests": "9",
                "min_samples": "8",
                "canary.error_rate": "0.5",
                "limit.error_rate": "0.05",
            },
            "roll_back: 9 of 8 samples, errors 50.0% / 5.0%, p95 -",
        ),
    ],
)
def test_the_analysis_behind_a_move_fits_one_line(
    evidence: dict[str, str], line: str | None
) -> None:
    assert analysis_line(evidence) == line
