"""What a gate's bounds say to an approver: which direction of a metric is better, whether
a bound is on the change from the baseline, and the verdict the page shows.

The evaluator writes a gate's bounds as one line (`>= 0.80; change >= -0.05; relative change
<= +50.0%`): `>=` marks a metric where higher is better, `<=` one where lower is; a part
naming a change (or a ratio, `<= 1.2x`) bounds the change from the baseline, and without a
baseline the evaluator does not apply it. Such a gate judged nothing, so it reads "n/a",
never "passed". Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Ungated metrics whose direction no gate states: the evaluator's names where lower is better.
LOWER_IS_BETTER = re.compile(r"(^latency|_ms$|^no_op_rate$|loss$|perplexity$|error_rate$)")
HIGHER_IS_BETTER = re.compile(r"(^accuracy|^tokens_per_s$|^schema_validity$|loglik)")
_OPERATOR = re.compile(r"(>=|<=|>|<)")


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "n/a"  # every bound is on the change from a baseline there is none of
    NOT_GATED = "not gated"


@dataclass(frozen=True, slots=True)
class Bounds:
    """A gate's bounds line, read: the better direction (None: unstated) and which kinds."""

    greater_is_better: bool | None
    absolute: bool  # bounds the value itself
    relative: bool  # bounds the change from the baseline


def read_bounds(threshold: str) -> Bounds:
    """`>= 0.80; change >= -0.05` -> higher is better, an absolute and a relative bound."""
    better: bool | None = None
    absolute = relative = False
    for part in (p.strip() for p in threshold.split(";")):
        operator = _OPERATOR.search(part)
        if operator is None:
            continue
        if better is None:
            better = operator.group(1).startswith(">")
        if "change" in part or part.endswith("x") or part.endswith("%"):
            relative = True
        else:
            absolute = True
    return Bounds(better, absolute, relative)


def better_direction(
    name: str, threshold: str, suite_gates: Mapping[str, Any] | None = None
) -> bool | None:
    """True where higher is better, False where lower is, None where nothing says: the gate's
    bounds first, then the suite's gate (the report's `suite.gates`), then the metric's name."""
    stated = read_bounds(threshold).greater_is_better
    if stated is not None:
        return stated
    gate = (suite_gates or {}).get(name)
    if isinstance(gate, Mapping) and isinstance(gate.get("greater_is_better"), bool):
        return bool(gate["greater_is_better"])
    if LOWER_IS_BETTER.search(name):
        return False
    if HIGHER_IS_BETTER.search(name):
        return True
    return None


def verdict_of(
    *, gated: bool, passed: bool, threshold: str, baseline: float | None
) -> tuple[Verdict, str]:
    """The verdict an approver reads, and a note where it holds only in part."""
    if not gated:
        return Verdict.NOT_GATED, ""
    if not passed:
        return Verdict.FAILED, ""
    bounds = read_bounds(threshold)
    if baseline is None and bounds.relative:
        if not bounds.absolute:
            return Verdict.NOT_APPLICABLE, "no baseline: the change bounds were not applied"
        return Verdict.PASSED, "absolute bound only: no baseline for the change bounds"
    return Verdict.PASSED, ""
