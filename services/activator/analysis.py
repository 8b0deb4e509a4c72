"""Canary analysis: one pure decision over the canary's and the stable revision's metrics.

The rules, in order (`analyse` applies them; nothing else decides):

- the error-rate limit is the larger of `max_error_rate` and the stable revision's rate
  plus `error_rate_margin`, so a canary is never blamed for errors the stable one has too;
- the canary is rolled back as soon as its breach is certain: before `min_samples`, more
  errors than the limit allows in `min_samples` requests; from then on, a rate above it;
- with `min_samples`, its p95 latency must stay under `max_p95_ms` (when set) and, when the
  stable revision also has `min_samples`, under both `max_p95_ratio` times and
  `min_p95_delta_ms` above the stable p95 (the slack keeps millisecond noise from failing it);
- it holds until it has `min_samples` and has been observed for `step_interval_s`;
- then it moves to the next step of `steps`; the step that reaches 100 is the promotion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum


class Verdict(StrEnum):
    hold = "hold"
    expand = "expand"
    promote = "promote"
    roll_back = "roll_back"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one revision served in the window: requests, errors and the p95 latency."""

    requests: int
    errors: int
    p95_ms: float | None = None  # None: no latency samples

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisPolicy:
    steps: tuple[int, ...] = (5, 25, 50, 100)
    step_interval_s: float = 60.0
    min_samples: int = 50
    max_error_rate: float = 0.05
    error_rate_margin: float = 0.02
    max_p95_ratio: float = 1.5
    min_p95_delta_ms: float = 50.0
    max_p95_ms: float | None = None
    auto_advance: bool = True  # False: analysis only rolls back; operators expand
    auto_rollout: bool = True  # False: an approved revision waits for `adapterctl promote`

    def __post_init__(self) -> None:
        if any(not 0 < s <= 100 for s in self.steps) or list(self.steps) != sorted(set(self.steps)):
            raise ValueError(f"canary steps must rise within 1..100, got {self.steps}")
        if self.min_samples < 1 or self.step_interval_s < 0:
            raise ValueError("min_samples must be at least 1 and step_interval_s not negative")
        if not 0 <= self.max_error_rate <= 1 or self.max_p95_ratio < 1:
            raise ValueError("max_error_rate must lie in 0..1 and max_p95_ratio be at least 1")

    @classmethod
    def from_settings(cls, steps: tuple[int, ...], values: Mapping[str, object]) -> AnalysisPolicy:
        """The policy from the environment's steps and its stored thresholds (unset: default)."""
        known = {f.name: f for f in fields(cls) if f.name != "steps"}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown canary analysis settings: {', '.join(unknown)}")
        parsed: dict[str, object] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name in ("min_samples",):
                parsed[name] = int(str(value))
            elif name in ("auto_advance", "auto_rollout"):
                parsed[name] = str(value).lower() in ("1", "true", "yes")
            else:
                parsed[name] = float(str(value))
        return cls(steps=tuple(steps), **parsed)  # type: ignore[arg-type]

    def next_step(self, percent: int) -> int | None:
        """The first step above `percent`, or None when none is left."""
        return next((s for s in self.steps if s > percent), None)

    @property
    def zero_length(self) -> bool:
        """No canary at all: the first step already takes every request."""
        return not self.steps or self.steps[0] >= 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    verdict: Verdict
    reason: str
    next_percent: int | None = None
    evidence: Mapping[str, str]


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def analyse(
    policy: AnalysisPolicy,
    percent: int,
    canary: Observation,
    stable: Observation | None,
    elapsed_s: float,
) -> Decision:
    """Expand, hold, promote or roll back the canary now serving `percent` of the traffic."""
    stable_rate = stable.error_rate if stable and stable.requests else 0.0
    error_limit = max(policy.max_error_rate, stable_rate + policy.error_rate_margin)
    latency_limit = _latency_limit(policy, stable)
    evidence = {
        "canary.requests": str(canary.requests),
        "canary.errors": str(canary.errors),
        "canary.error_rate": _fmt(canary.error_rate),
        "canary.p95_ms": _fmt(canary.p95_ms),
        "stable.requests": str(stable.requests if stable else 0),
        "stable.errors": str(stable.errors if stable else 0),
        "stable.error_rate": _fmt(stable_rate),
        "stable.p95_ms": _fmt(stable.p95_ms if stable else None),
        "limit.error_rate": _fmt(error_limit),
        "limit.p95_ms": _fmt(latency_limit),
        "min_samples": str(policy.min_samples),
        "traffic_percent": str(percent),
        "observed_s": _fmt(elapsed_s),
        "step_interval_s": _fmt(policy.step_interval_s),
    }

    def decide(verdict: Verdict, reason: str, next_percent: int | None = None) -> Decision:
        facts = {**evidence, "decision": verdict.value, "reason": reason}
        if next_percent is not None:
            facts["next_percent"] = str(next_percent)
        return Decision(verdict=verdict, reason=reason, next_percent=next_percent, evidence=facts)

    if canary.requests < policy.min_samples and canary.errors > policy.min_samples * error_limit:
        return decide(
            Verdict.roll_back,
            f"{canary.errors} errors: more than an error rate of {_fmt(error_limit)} allows in "
            f"{policy.min_samples} requests",
        )
    if canary.requests < policy.min_samples:
        return decide(
            Verdict.hold, f"waiting for samples: {canary.requests} of {policy.min_samples}"
        )
    if canary.error_rate > error_limit:
        return decide(
            Verdict.roll_back,
            f"error rate {_fmt(canary.error_rate)} above the limit {_fmt(error_limit)}",
        )
    if latency_limit is not None and canary.p95_ms is not None and canary.p95_ms > latency_limit:
        return decide(
            Verdict.roll_back,
            f"p95 latency {_fmt(canary.p95_ms)} ms above the limit {_fmt(latency_limit)} ms",
        )
    if elapsed_s < policy.step_interval_s:
        return decide(Verdict.hold, f"healthy; observing for {_fmt(policy.step_interval_s)} s")
    if not policy.auto_advance:
        return decide(Verdict.hold, "healthy; the environment advances canaries by hand")
    following = policy.next_step(percent)
    if following is None or following >= 100:
        return decide(Verdict.promote, "healthy at the last canary step", 100)
    return decide(Verdict.expand, f"healthy at {percent}%", following)


def opening(policy: AnalysisPolicy, percent: int) -> Decision:
    """The decision on a step that has just begun: no samples yet, so hold. Noted as the
    step's evidence, so nobody reads the last step's verdict as this one's."""
    return analyse(policy, percent, Observation(requests=0, errors=0), None, 0.0)


def _latency_limit(policy: AnalysisPolicy, stable: Observation | None) -> float | None:
    limits = [] if policy.max_p95_ms is None else [policy.max_p95_ms]
    if stable is not None and stable.requests >= policy.min_samples and stable.p95_ms is not None:
        limits.append(
            max(stable.p95_ms * policy.max_p95_ratio, stable.p95_ms + policy.min_p95_delta_ms)
        )
    return min(limits) if limits else None
