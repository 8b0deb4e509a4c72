"""Serving metrics as the analysis reads them: per-revision counters, by origin.

Our replicas export Prometheus text (`lora_requests_total`, `lora_request_errors_total` and
the `lora_request_duration_seconds` histogram, labelled by `lora`); the gateway exports the
Gateway API Inference Extension's names (`inference_model_request_total`, ..., labelled by
`target_model_name`), which a Prometheus server then holds. An origin is whatever keeps one
set of cumulative counters: a replica, a gateway, a gateway instance as Prometheus sees it
(`metrics_sources.py` reads them). Counters are cumulative, so a canary step is judged on
the difference to the snapshot taken when the step began, per origin. An origin missing
from that baseline (unreachable when the step began, or added since) counts nothing until
its first snapshot, which `rebase` makes its baseline: its cumulative counters hold what it
served before the step. A lora missing from an origin that is in the baseline counts from
zero (its counter was born since), and so does a counter that went down (a restart).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from services.activator.analysis import Observation


@dataclass(frozen=True, slots=True)
class Names:
    """The series one exporter keeps a revision's counters in, and the label naming it."""

    requests: str
    errors: str
    buckets: str
    label: str


REPLICA = Names(
    "lora_requests_total",
    "lora_request_errors_total",
    "lora_request_duration_seconds_bucket",
    "lora",
)
GATEWAY = Names(
    "inference_model_request_total",
    "inference_model_request_error_total",
    "inference_model_request_duration_seconds_bucket",
    "target_model_name",
)


@dataclass(frozen=True, slots=True)
class Counters:
    requests: float = 0.0
    errors: float = 0.0
    buckets: tuple[tuple[float, float], ...] = field(default=())  # (le, cumulative count)


Snapshot = Mapping[str, Counters]  # by lora name


def parse_metrics(text: str, names: Names = REPLICA) -> dict[str, Counters]:
    """Each lora's counters from one exporter's `/metrics` text (a replica's, by default),
    summed over every other label (a gateway's `model_name`, `error_code`)."""
    requests: dict[str, float] = {}
    errors: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            lora = sample.labels.get(names.label)
            if lora is None:
                continue
            if sample.name == names.requests:
                requests[lora] = requests.get(lora, 0.0) + sample.value
            elif sample.name == names.errors:
                errors[lora] = errors.get(lora, 0.0) + sample.value
            elif sample.name == names.buckets:
                le = float(sample.labels["le"])
                per = buckets.setdefault(lora, {})
                per[le] = per.get(le, 0.0) + sample.value
    return counters_of(requests, errors, buckets)


def counters_of(
    requests: Mapping[str, float],
    errors: Mapping[str, float],
    buckets: Mapping[str, Mapping[float, float]],
) -> dict[str, Counters]:
    """Counters per lora from its request and error totals and its (le -> count) buckets."""
    return {
        lora: Counters(
            requests=requests.get(lora, 0.0),
            errors=errors.get(lora, 0.0),
            buckets=tuple(sorted(buckets.get(lora, {}).items())),
        )
        for lora in set(requests) | set(errors) | set(buckets)
    }


def _restarted(now: Counters, before: Counters) -> bool:
    return now.requests < before.requests or now.errors < before.errors


def _since(now: Counters, before: Counters | None) -> Counters:
    if before is None or _restarted(now, before):
        return now  # born since the baseline, or the replica restarted: counts from zero
    earlier = dict(before.buckets)
    return Counters(
        requests=now.requests - before.requests,
        errors=now.errors - before.errors,
        buckets=tuple((le, max(0.0, c - earlier.get(le, 0.0))) for le, c in now.buckets),
    )


def _add(a: Counters, b: Counters) -> Counters:
    merged = dict(a.buckets)
    for le, count in b.buckets:
        merged[le] = merged.get(le, 0.0) + count
    return Counters(a.requests + b.requests, a.errors + b.errors, tuple(sorted(merged.items())))


def window(now: Mapping[str, Snapshot], before: Mapping[str, Snapshot]) -> dict[str, Counters]:
    """What every replica served since `before`, summed per lora; both keyed by replica.

    A replica that `before` lacks counts nothing: what it served before its first scrape
    cannot be told from what it served since (`rebase` adds that scrape to the baseline)."""
    total: dict[str, Counters] = {}
    for replica, snapshot in now.items():
        if replica not in before:
            continue
        earlier = before[replica]
        for lora, counters in snapshot.items():
            delta = _since(counters, earlier.get(lora))
            total[lora] = _add(total.get(lora, Counters()), delta)
    return total


def rebase(now: Mapping[str, Snapshot], before: Mapping[str, Snapshot]) -> dict[str, Snapshot]:
    """The step's baseline for the next round: `before`, plus the first scrape of every
    replica it lacked, and zero for every lora whose counter went down (a restart), so what
    it serves from now on is counted once."""
    rebased: dict[str, Snapshot] = {replica: dict(snapshot) for replica, snapshot in before.items()}
    for replica, snapshot in now.items():
        if replica not in before:
            rebased[replica] = dict(snapshot)
            continue
        earlier = before[replica]
        restarted = {
            lora: Counters()
            for lora, counters in snapshot.items()
            if lora in earlier and _restarted(counters, earlier[lora])
        }
        if restarted:
            rebased[replica] = {**earlier, **restarted}
    return rebased


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets, in seconds."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_le  # beyond the highest finite bucket: its bound is the best guess
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return ordered[-1][0]


def observe(counters: Counters | None) -> Observation:
    if counters is None:
        return Observation(requests=0, errors=0)
    p95 = quantile(0.95, counters.buckets)
    return Observation(
        requests=int(counters.requests),
        errors=int(counters.errors),
        p95_ms=None if p95 is None else p95 * 1000,
    )


def snapshot_to_json(snapshots: Mapping[str, Snapshot]) -> dict[str, Any]:
    return {
        replica: {
            # `le` as text: JSON (and PostgreSQL's jsonb) has no infinity.
            lora: {
                "requests": c.requests,
                "errors": c.errors,
                "buckets": [[str(le), n] for le, n in c.buckets],
            }
            for lora, c in snapshot.items()
        }
        for replica, snapshot in snapshots.items()
    }


def snapshot_from_json(data: Mapping[str, Any]) -> dict[str, dict[str, Counters]]:
    return {
        replica: {
            lora: Counters(
                requests=float(c["requests"]),
                errors=float(c["errors"]),
                buckets=tuple((float(le), float(n)) for le, n in c["buckets"]),
            )
            for lora, c in snapshot.items()
        }
        for replica, snapshot in data.items()
    }
