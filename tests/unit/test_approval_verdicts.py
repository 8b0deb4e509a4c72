"""A gate's bounds as the approver reads them, table-driven: the better direction, whether
a bound is on the change from the baseline, and "n/a" (never "passed") for a gate that had
no baseline to judge against."""

from __future__ import annotations

from typing import Any

import pytest

from services.approval.verdicts import Bounds, Verdict, better_direction, read_bounds, verdict_of


@pytest.mark.parametrize(
    ("threshold", "bounds"),
    [
        (">= 0.70", Bounds(True, absolute=True, relative=False)),
        ("<= 180", Bounds(False, absolute=True, relative=False)),
        ("change >= -1.00", Bounds(True, absolute=False, relative=True)),
        ("relative change <= +50.0%", Bounds(False, absolute=False, relative=True)),
        ("<= 1.2x", Bounds(False, absolute=False, relative=True)),
        (">= 0.80; change >= -0.05", Bounds(True, absolute=True, relative=True)),
        ("", Bounds(None, absolute=False, relative=False)),
        ("whatever", Bounds(None, absolute=False, relative=False)),
    ],
)
def test_the_bounds_line_says_direction_and_kind(threshold: str, bounds: Bounds) -> None:
    assert read_bounds(threshold) == bounds


@pytest.mark.parametrize(
    ("name", "threshold", "suite_gates", "expected"),
    [
        ("accuracy", ">= 0.7", None, True),
        ("accuracy", "<= 0.7", None, False),  # the gate's own words win over the name
        ("speed", "", {"speed": {"greater_is_better": False}}, False),
        ("speed", "", {"speed": {"greater_is_better": "no"}}, None),
        ("latency_p95_ms", "", None, False),
        ("no_op_rate", "", None, False),
        ("mean_loglik", "", None, True),
        ("tokens_per_s", "", None, True),
        ("mystery", "", None, None),
    ],
)
def test_the_better_direction_comes_from_the_gate_then_the_suite_then_the_name(
    name: str, threshold: str, suite_gates: dict[str, Any] | None, expected: bool | None
) -> None:
    assert better_direction(name, threshold, suite_gates) is expected


@pytest.mark.parametrize(
    ("gated", "passed", "threshold", "baseline", "verdict", "noted"),
    [
        (True, True, ">= 0.7", None, Verdict.PASSED, False),
        (True, True, ">= 0.7", 0.6, Verdict.PASSED, False),
        (True, False, ">= 0.7", None, Verdict.FAILED, False),
        (True, True, "change >= -0.05", 0.8, Verdict.PASSED, False),
        (True, True, "change >= -0.05", None, Verdict.NOT_APPLICABLE, True),
        (True, True, "<= 1.2x", None, Verdict.NOT_APPLICABLE, True),
        (True, False, "change >= -0.05", None, Verdict.FAILED, False),  # e.g. not measured
        (True, True, ">= 0.7; change >= -0.05", None, Verdict.PASSED, True),
        (False, True, "", None, Verdict.NOT_GATED, False),
    ],
)
def test_a_gate_on_the_change_reads_na_without_a_baseline(
    gated: bool,
    passed: bool,
    threshold: str,
    baseline: float | None,
    verdict: Verdict,
    noted: bool,
) -> None:
    found, note = verdict_of(gated=gated, passed=passed, threshold=threshold, baseline=baseline)
    assert found is verdict
    assert bool(note) is noted
