"""The evaluator's gates: MLflow-style thresholds, findings that name metric and change."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from services.gpu_evaluator.gates import MetricThreshold, check_metric, decide_gate

ACCURACY = MetricThreshold(threshold=0.75, min_absolute_change=-0.05)
NO_OP = MetricThreshold(threshold=0.25, greater_is_better=False)
P95 = MetricThreshold(min_relative_change=-0.5, greater_is_better=False)  # ratio <= 1.5
TOKENS = MetricThreshold(min_relative_change=-0.33)  # ratio >= 0.67
IMPROVE = MetricThreshold(min_absolute_change=0.1)  # MLflow's positive form: must beat by 0.1


@dataclass
class Row:
    name: str
    metric: str
    gate: MetricThreshold
    value: float | None
    baseline: float | None
    passed: bool
    codes: list[str] = field(default_factory=list)
    message: str = ""


ROWS = [
    Row("floor met", "accuracy", ACCURACY, 0.9, None, True),
    Row("floor met exactly", "accuracy", ACCURACY, 0.75, None, True),
    Row(
        "floor missed",
        "accuracy",
        ACCURACY,
        0.5,
        None,
        False,
        ["metric_below_threshold"],
        "accuracy 0.50 below the floor 0.75",
    ),
    Row("small drop tolerated", "accuracy", ACCURACY, 0.96, 1.0, True),
    Row(
        "regression beyond the allowed change",
        "accuracy",
        MetricThreshold(min_absolute_change=-0.05),
        0.25,
        1.0,
        False,
        ["metric_regressed"],
        "accuracy 0.25 vs baseline 1.00: change -0.75 below the allowed -0.05",
    ),
    Row(
        "both bounds broken give two findings",
        "accuracy",
        ACCURACY,
        0.25,
        1.0,
        False,
        ["metric_below_threshold", "metric_regressed"],
    ),
    Row("no baseline: only the absolute bound", "accuracy", ACCURACY, 0.8, None, True),
    Row("positive min change met", "accuracy", IMPROVE, 0.95, 0.8, True),
    Row(
        "positive min change missed",
        "accuracy",
        IMPROVE,
        0.85,
        0.8,
        False,
        ["metric_regressed"],
        "change +0.05 below the allowed +0.10",
    ),
    Row("no-op rate under the ceiling", "no_op_rate", NO_OP, 0.0, None, True),
    Row(
        "no-op rate over the ceiling",
        "no_op_rate",
        NO_OP,
        1.0,
        None,
        False,
        ["no_op_adapter"],
        "no_op_rate 1.00 above the ceiling 0.25",
    ),
    Row(
        "schema validity under its floor",
        "schema_validity",
        MetricThreshold(threshold=0.9),
        0.0,
        1.0,
        False,
        ["structured_output_invalid"],
        "schema_validity 0.00 below the floor 0.90",
    ),
    Row("p95 ratio within the ceiling", "latency_p95_ms", P95, 140.0, 100.0, True),
    Row(
        "p95 ratio over the ceiling",
        "latency_p95_ms",
        P95,
        200.0,
        100.0,
        False,
        ["performance_regressed"],
        "latency_p95_ms 200.00 vs baseline 100.00: relative change +100.0% (ratio 2.00) "
        "above the allowed +50.0%",
    ),
    Row("faster than the baseline", "latency_p95_ms", P95, 50.0, 100.0, True),
    Row("tokens/s ratio above the floor", "tokens_per_s", TOKENS, 70.0, 100.0, True),
    Row(
        "tokens/s ratio under the floor",
        "tokens_per_s",
        TOKENS,
        50.0,
        100.0,
        False,
        ["performance_regressed"],
        "relative change -50.0% (ratio 0.50) below the allowed -33.0%",
    ),
    Row("relative change to a zero baseline is skipped", "tokens_per_s", TOKENS, 5.0, 0.0, True),
    Row("ratio gates without a baseline pass", "latency_p95_ms", P95, 900.0, None, True),
    Row(
        "an unmeasured metric fails",
        "schema_validity",
        MetricThreshold(threshold=0.9),
        None,
        None,
        False,
        ["metric_missing"],
        "schema_validity was not measured",
    ),
    Row(
        "a NaN metric fails",
        "tokens_per_s",
        TOKENS,
        math.nan,
        100.0,
        False,
        ["metric_missing"],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_each_gate_row_decides_as_its_table_says(row: Row) -> None:
    result, findings = check_metric(row.metric, row.value, row.baseline, row.gate)
    assert result.passed is row.passed
    assert [f.code for f in findings] == row.codes
    assert all(f.severity == "error" and f.evidence["metric"] == row.metric for f in findings)
    if row.message:
        assert any(row.message in f.message for f in findings), [f.message for f in findings]


def test_a_regression_finding_carries_value_baseline_change_and_allowance_as_evidence() -> None:
    _, [finding] = check_metric("accuracy", 0.25, 1.0, MetricThreshold(min_absolute_change=-0.05))
    assert finding.evidence == {
        "metric": "accuracy",
        "value": "0.2500",
        "baseline": "1.0000",
        "change": "-0.7500",
        "allowed": "-0.0500",
    }


def test_the_decision_passes_only_when_every_gated_metric_passes() -> None:
    gates = {"accuracy": ACCURACY, "no_op_rate": NO_OP}
    good = decide_gate({"accuracy": 1.0, "no_op_rate": 0.0}, None, gates)
    noop = decide_gate({"accuracy": 1.0, "no_op_rate": 1.0}, None, gates)
    assert good.passed and not good.findings
    assert not noop.passed and noop.failed_metrics == ["no_op_rate"]
    assert [f.code for f in noop.findings] == ["no_op_adapter"]


def test_the_decision_reports_gated_metrics_only_in_name_order_with_their_baselines() -> None:
    decision = decide_gate(
        {"tokens_per_s": 90.0, "accuracy": 0.9, "mean_loglik": -0.5},
        {"tokens_per_s": 100.0, "accuracy": 0.95},
        {"tokens_per_s": TOKENS, "accuracy": ACCURACY},
    )
    assert [(m.name, m.baseline) for m in decision.metrics] == [
        ("accuracy", 0.95),
        ("tokens_per_s", 100.0),
    ]
    assert decision.metrics[0].threshold == ">= 0.75; change >= -0.05"


def test_a_lower_is_better_threshold_describes_itself_as_a_ceiling() -> None:
    assert NO_OP.describe() == "<= 0.25"
    assert P95.describe() == "relative change <= +50.0%"
