"""The chart's geometry, table-driven: each bar is the change from the baseline, right of
the axis when better and left when worse, whichever way the metric points and whatever
its sign; no bar without a baseline."""

from __future__ import annotations

import math

import pytest

from services.approval.chart import AXIS, CAP, FLOOR, HALF, Kind, bar_chart, change_of, chart_rows
from services.approval.verdicts import Verdict
from services.approval.views import MetricComparison


def _metric(
    candidate: float | None,
    baseline: float | None,
    greater_is_better: bool | None = True,
    name: str = "m",
    verdict: Verdict = Verdict.PASSED,
) -> MetricComparison:
    return MetricComparison(
        name=name,
        candidate=candidate,
        baseline=baseline,
        delta=None,
        threshold="",
        passed=verdict is not Verdict.FAILED,
        greater_is_better=greater_is_better,
        verdict=verdict,
    )


@pytest.mark.parametrize(
    ("candidate", "baseline", "expected"),
    [
        (0.82, 0.74, 0.08 / 0.74),
        (-0.5, -1.0, 0.5),  # a log-likelihood rising towards zero is a positive change
        (-1.5, -1.0, -0.5),
        (143.0, 120.0, 23.0 / 120.0),
        (0.0, 0.0, 0.0),
        (0.2, 0.0, math.inf),
        (-0.2, 0.0, -math.inf),
    ],
)
def test_the_change_is_relative_to_the_baselines_magnitude(
    candidate: float, baseline: float, expected: float
) -> None:
    assert change_of(candidate, baseline) == pytest.approx(expected)


# (what, candidate, baseline, greater_is_better, side, tone, label): one metric alone, so
# the scale is its own change, clamped to [FLOOR, CAP].
CASES = [
    ("accuracy up", 0.9, 0.6, True, "right", "better", "+50.0% (better)"),
    ("accuracy down", 0.6, 0.9, True, "left", "worse", "-33.3% (worse)"),
    ("loglik up, both negative", -0.5, -1.0, True, "right", "better", "+50.0% (better)"),
    ("loglik down, both negative", -1.5, -1.0, True, "left", "worse", "-50.0% (worse)"),
    ("latency up is worse", 150.0, 100.0, False, "left", "worse", "+50.0% (worse)"),
    ("latency down is better", 50.0, 100.0, False, "right", "better", "-50.0% (better)"),
    ("lower-is-better, negative", -2.0, -1.0, False, "right", "better", "-100.0% (better)"),
    ("direction not stated", 1.5, 1.0, None, "right", "neutral", "+50.0% (direction not stated)"),
    ("no change", 1.0, 1.0, True, "none", "neutral", "no change"),
]


@pytest.mark.parametrize(
    ("candidate", "baseline", "greater_is_better", "side", "tone", "label"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_bar_points_right_when_better_and_left_when_worse(
    candidate: float,
    baseline: float,
    greater_is_better: bool | None,
    side: str,
    tone: str,
    label: str,
) -> None:
    [row] = chart_rows([_metric(candidate, baseline, greater_is_better)])
    assert row.kind is Kind.BAR
    assert (row.tone, row.label) == (tone, label)
    if side == "right":
        assert row.x == AXIS and row.width > 0
    elif side == "left":
        assert row.x + row.width == pytest.approx(AXIS) and row.width > 0
    else:
        assert row.width == 0


@pytest.mark.parametrize(
    ("changes", "widths", "clipped"),
    [
        # the largest change spans half the chart; the others in proportion
        ([0.5, 0.25], [HALF, HALF / 2], [False, False]),
        # tiny changes stay tiny: the scale is at least FLOOR
        ([0.01, 0.02], [HALF * 0.01 / FLOOR, HALF * 0.02 / FLOOR], [False, False]),
        # beyond CAP a bar is clipped at the edge and said so
        ([3.0, 0.5], [HALF, HALF * 0.5 / CAP], [True, False]),
    ],
)
def test_the_bars_share_one_scale_clamped_between_floor_and_cap(
    changes: list[float], widths: list[float], clipped: list[bool]
) -> None:
    rows = chart_rows([_metric(1.0 + c, 1.0, name=f"m{i}") for i, c in enumerate(changes)])
    assert [r.width for r in rows] == pytest.approx(widths)
    assert [r.clipped for r in rows] == clipped


def test_a_change_from_a_zero_baseline_is_drawn_full_and_clipped() -> None:
    [row] = chart_rows([_metric(0.2, 0.0, greater_is_better=False)])
    assert (row.x, row.width, row.clipped, row.tone) == (AXIS - HALF, HALF, True, "worse")
    assert row.label == "from 0 to 0.2 (worse)"


@pytest.mark.parametrize(
    ("candidate", "baseline", "kind", "label"),
    [
        (0.8, None, Kind.NO_BASELINE, "no baseline"),
        (None, 0.8, Kind.NOT_MEASURED, "not measured"),
        (None, None, Kind.NO_BASELINE, "no baseline"),
    ],
)
def test_a_metric_without_both_values_gets_words_and_no_bar(
    candidate: float | None, baseline: float | None, kind: Kind, label: str
) -> None:
    [row] = chart_rows([_metric(candidate, baseline)])
    assert (row.kind, row.width, row.label) == (kind, 0.0, label)


def test_the_markup_draws_each_bar_where_the_geometry_says_and_marks_failed_gates() -> None:
    metrics = [
        _metric(-0.5, -1.0, True, name="mean_loglik"),
        _metric(150.0, 100.0, False, name="latency_p95_ms", verdict=Verdict.FAILED),
        _metric(0.3, None, True, name="no_op_rate"),
    ]
    svg = bar_chart(metrics)
    loglik, latency, _ = chart_rows(metrics)
    assert f'<rect x="{loglik.x:.1f}" y="34" width="{loglik.width:.1f}"' in svg
    assert f'<rect x="{latency.x:.1f}" y="62" width="{latency.width:.1f}"' in svg
    assert loglik.x == AXIS and latency.x < AXIS
    assert svg.count("<rect") == 2  # none for the metric without a baseline
    assert "latency_p95_ms ✗ gate failed" in svg and "mean_loglik ✗" not in svg
    assert 'class="metric no-baseline neutral" data-metric="no_op_rate"' in svg
