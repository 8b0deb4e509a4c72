"""What an operator reads about a running canary: its step, samples against the minimum,
error rate and p95 against their limits, the wait before the next step may be taken, and
the current verdict; from the step's row, the evidence noted on it and the policy."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.activator.analysis import AnalysisPolicy

NOT_JUDGED = "not judged yet"


def _number(text: object) -> float | None:
    try:
        return None if text in (None, "", "none") else float(str(text))
    except ValueError:
        return None


def current_evidence(row: Mapping[str, Any]) -> Mapping[str, str]:
    """The evidence noted on the step, when it is this step's (its share); else empty."""
    evidence: Mapping[str, str] = row.get("last_decision") or {}
    if evidence.get("traffic_percent") != str(row["traffic_percent"]):
        return {}
    return evidence


def canary_progress(
    row: Mapping[str, Any], policy: AnalysisPolicy, now: datetime
) -> dict[str, Any]:
    """One canary's progress, as `GET /canaries` serves it; `row` is its `canary_rows` row."""
    evidence = current_evidence(row)
    percent = int(row["traffic_percent"])
    elapsed_s = max(0.0, (now - row["step_started_at"]).total_seconds())
    samples = _number(evidence.get("canary.requests"))
    return {
        "adapter": row["adapter"],
        "environment": row["environment"],
        "revision": row["revision"],
        "step": policy.steps.index(percent) + 1 if percent in policy.steps else None,
        "steps": len(policy.steps),
        "traffic_percent": percent,
        "step_started_at": row["step_started_at"],
        "samples": int(samples or 0),
        "min_samples": policy.min_samples,
        "error_rate": _number(evidence.get("canary.error_rate")),
        "error_rate_limit": _number(evidence.get("limit.error_rate")),
        "p95_ms": _number(evidence.get("canary.p95_ms")),
        "p95_limit_ms": _number(evidence.get("limit.p95_ms")),
        "next_step_in_s": round(max(0.0, policy.step_interval_s - elapsed_s), 1),
        "verdict": evidence.get("decision", NOT_JUDGED),
        "reason": evidence.get("reason", ""),
    }
