"""Gates in MLflow's vocabulary: absolute bounds and the change allowed against the baseline.

`MetricThreshold` reads as MLflow's: `threshold` is a floor (or a ceiling when
`greater_is_better` is false); `min_absolute_change` and `min_relative_change` are the
least improvement over the baseline the candidate must show, in the metric's better
direction. Unlike MLflow they may be negative: `min_absolute_change: -0.05` on accuracy
tolerates a drop of five points. A ratio bound is a relative change: a p95-latency ratio
ceiling of 1.5 is `min_relative_change: -0.5` with `greater_is_better: false`, a tokens/s
ratio floor of 0.67 is `min_relative_change: -0.33`. Without a baseline (the first
revision in an environment) only the absolute bounds apply. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from shared.events import Finding, MetricResult
from shared.findings import FindingCode

# What a failed gate on these metrics means, as the finding's code says it.
CODES = {
    "no_op_rate": FindingCode.NO_OP_ADAPTER,
    "schema_validity": FindingCode.STRUCTURED_OUTPUT_INVALID,
}
PERFORMANCE = frozenset({"latency_p50_ms", "latency_p95_ms", "tokens_per_s"})
MEANINGS = {
    "no_op_rate": "share of must-change prompts answered exactly as the base model answers",
    "schema_validity": "share of structured prompts answered with JSON that fits the schema",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricThreshold:
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool = True

    def describe(self) -> str:
        """The bounds as one line, e.g. `>= 0.80; change >= -0.05`."""
        better = ">=" if self.greater_is_better else "<="
        parts = []
        if self.threshold is not None:
            parts.append(f"{better} {self.threshold:.2f}")
        if self.min_absolute_change is not None:
            parts.append(f"change {better} {self.allowed_change():+.2f}")
        if self.min_relative_change is not None:
            parts.append(f"relative change {better} {self.allowed_relative_change():+.1%}")
        return "; ".join(parts)

    def allowed_change(self) -> float:
        """The least (or, lower-is-better, the most) candidate minus baseline allowed."""
        assert self.min_absolute_change is not None
        sign = 1 if self.greater_is_better else -1
        return sign * self.min_absolute_change

    def allowed_relative_change(self) -> float:
        assert self.min_relative_change is not None
        sign = 1 if self.greater_is_better else -1
        return sign * self.min_relative_change


@dataclass(frozen=True, slots=True)
class GateDecision:
    passed: bool
    metrics: tuple[MetricResult, ...]
    findings: tuple[Finding, ...]

    @property
    def failed_metrics(self) -> list[str]:
        return [m.name for m in self.metrics if not m.passed]


def decide_gate(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    thresholds: Mapping[str, MetricThreshold],
) -> GateDecision:
    """Every gated metric's verdict and a finding for each bound it breaks."""
    results: list[MetricResult] = []
    findings: list[Finding] = []
    for name in sorted(thresholds):
        result, broken = check_metric(
            name, candidate.get(name), (baseline or {}).get(name), thresholds[name]
        )
        results.append(result)
        findings.extend(broken)
    return GateDecision(
        passed=all(r.passed for r in results), metrics=tuple(results), findings=tuple(findings)
    )


def check_metric(
    name: str, value: float | None, baseline: float | None, gate: MetricThreshold
) -> tuple[MetricResult, list[Finding]]:
    """One metric against its threshold; a missing or NaN value fails (nothing to judge)."""
    if value is None or math.isnan(value):
        finding = _finding(
            FindingCode.METRIC_MISSING,
            name,
            f"{name} was not measured, so its gate cannot pass",
            {},
        )
        return MetricResult(
            name=name, value=math.nan, baseline=baseline, threshold=gate.describe(), passed=False
        ), [finding]
    findings = [_absolute(name, value, gate)]
    if baseline is not None and not math.isnan(baseline):
        findings += [_absolute_change(name, value, baseline, gate)]
        findings += [_relative_change(name, value, baseline, gate)]
    broken = [f for f in findings if f is not None]
    result = MetricResult(
        name=name,
        value=value,
        baseline=baseline,
        threshold=gate.describe(),
        passed=not broken,
    )
    return result, broken


def _absolute(name: str, value: float, gate: MetricThreshold) -> Finding | None:
    if gate.threshold is None:
        return None
    if gate.greater_is_better and value < gate.threshold:
        message = f"{name} {value:.2f} below the floor {gate.threshold:.2f}"
    elif not gate.greater_is_better and value > gate.threshold:
        message = f"{name} {value:.2f} above the ceiling {gate.threshold:.2f}"
    else:
        return None
    code = CODES.get(name, FindingCode.METRIC_BELOW_THRESHOLD)
    evidence = {"value": f"{value:.4f}", "threshold": f"{gate.threshold:.4f}"}
    return _finding(code, name, message, evidence)


def _absolute_change(
    name: str, value: float, baseline: float, gate: MetricThreshold
) -> Finding | None:
    if gate.min_absolute_change is None:
        return None
    change, allowed = value - baseline, gate.allowed_change()
    if gate.greater_is_better and change < allowed:
        side = "below"
    elif not gate.greater_is_better and change > allowed:
        side = "above"
    else:
        return None
    message = (
        f"{name} {value:.2f} vs baseline {baseline:.2f}: "
        f"change {change:+.2f} {side} the allowed {allowed:+.2f}"
    )
    evidence = {
        "value": f"{value:.4f}",
        "baseline": f"{baseline:.4f}",
        "change": f"{change:+.4f}",
        "allowed": f"{allowed:+.4f}",
    }
    return _finding(_regression_code(name), name, message, evidence)


def _relative_change(
    name: str, value: float, baseline: float, gate: MetricThreshold
) -> Finding | None:
    if gate.min_relative_change is None or baseline == 0:
        return None  # no ratio to a zero baseline; the absolute bounds still apply
    relative, allowed = (value - baseline) / abs(baseline), gate.allowed_relative_change()
    if gate.greater_is_better and relative < allowed:
        side = "below"
    elif not gate.greater_is_better and relative > allowed:
        side = "above"
    else:
        return None
    message = (
        f"{name} {value:.2f} vs baseline {baseline:.2f}: relative change {relative:+.1%} "
        f"(ratio {value / baseline:.2f}) {side} the allowed {allowed:+.1%}"
    )
    evidence = {
        "value": f"{value:.4f}",
        "baseline": f"{baseline:.4f}",
        "relative_change": f"{relative:+.4f}",
        "allowed": f"{allowed:+.4f}",
    }
    return _finding(_regression_code(name), name, message, evidence)


def _regression_code(name: str) -> FindingCode:
    if name in CODES:
        return CODES[name]
    return (
        FindingCode.PERFORMANCE_REGRESSED if name in PERFORMANCE else FindingCode.METRIC_REGRESSED
    )


def _finding(code: FindingCode, metric: str, message: str, evidence: dict[str, str]) -> Finding:
    meaning = MEANINGS.get(metric)
    return Finding(
        code=code,
        severity="error",
        message=f"{message} ({meaning})" if meaning else message,
        evidence={"metric": metric, **evidence},
    )
