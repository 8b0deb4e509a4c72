"""The evaluation report as the approval service reads it.

The report (`adapters.evaluation_report.v1`, written by the evaluator) is a JSON blob in
the artifact store under the event's `report_digest` (`sha256:` and the hex SHA-256 of its
bytes). From it this module reads `items` (each with `id`, `prompt` as chat turns, and
`candidate`, `baseline`, `base` objects holding the `output` text), `metrics`
(`{"candidate": {...}, "baseline": {...}}`), `gates` (the verdicts, for an event that
carried none), `suite.gates` (each gate's settings, which say a metric's better
direction) and `performance` (each performance figure's backend, device, dtype and
condition, the warm-up, the multi-tenant pressure). Anything malformed is skipped, never
an error page.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from services.approval.ports import Metric
from services.approval.verdicts import better_direction, verdict_of
from services.approval.views import (
    FigureView,
    MeasurementView,
    MetricComparison,
    OutputComparison,
    PressureView,
)
from shared.artifacts import ArtifactStore, StoreError


class EvidenceUnreadable(Exception):
    """A piece of evidence the store cannot give back intact."""


def suite_gates(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The suite's gate settings as the report keeps them (`suite.gates`); {} if absent."""
    suite = report.get("suite")
    gates = suite.get("gates") if isinstance(suite, Mapping) else None
    return gates if isinstance(gates, Mapping) else {}


def report_gates(report: Mapping[str, Any]) -> list[Metric]:
    """The report's own gate verdicts, for an event that carried none; bad rows skipped."""
    found = []
    for item in report.get("gates") or []:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            found.append(
                Metric(
                    name=item["name"],
                    value=finite(item.get("value")),
                    baseline=finite(item.get("baseline")),
                    threshold=str(item.get("threshold", "")),
                    passed=bool(item.get("passed", False)),
                )
            )
    return found


def ungated_metrics(report: Mapping[str, Any], gated: Sequence[str]) -> list[MetricComparison]:
    """The report's measured metrics that no gate judged, candidate beside baseline."""
    measured = report.get("metrics")
    if not isinstance(measured, Mapping):
        return []
    candidate = measured.get("candidate") if isinstance(measured.get("candidate"), Mapping) else {}
    baseline = measured.get("baseline") if isinstance(measured.get("baseline"), Mapping) else {}
    rows = []
    for name in sorted(set(candidate or {}) | set(baseline or {})):
        if name in gated or not isinstance(name, str):
            continue
        value, before = finite((candidate or {}).get(name)), finite((baseline or {}).get(name))
        rows.append(
            MetricComparison(
                name=name,
                candidate=value,
                baseline=before,
                delta=value - before if value is not None and before is not None else None,
                threshold="",
                passed=True,
                gated=False,
                greater_is_better=better_direction(name, "", suite_gates(report)),
                verdict=verdict_of(gated=False, passed=True, threshold="", baseline=before)[0],
            )
        )
    return rows


def measurement(report: Mapping[str, Any]) -> MeasurementView | None:
    """The report's `performance`: each figure, candidate beside baseline, with the backend,
    device and dtype that produced it; None for a report that does not say."""
    performance = report.get("performance")
    if not isinstance(performance, Mapping):
        return None
    where = _mapping(performance.get("measured_on"))
    warmup = _mapping(performance.get("warmup"))
    # (figure, condition, backend, device, dtype) -> {"candidate": value, "baseline": value}
    values: dict[tuple[str | None, ...], dict[str, float | None]] = {}
    for row in performance.get("figures") or []:
        if not isinstance(row, Mapping) or row.get("target") not in ("candidate", "baseline"):
            continue
        key = (
            _words(row.get("figure")),
            _words(row.get("condition")),
            _words(row.get("backend")),
            _device(row),
            _words(row.get("dtype")),
        )
        if key[0] is not None:
            values.setdefault(key, {})[str(row["target"])] = finite(row.get("value"))
    calls = warmup.get("calls")
    return MeasurementView(
        backend=_words(where.get("backend")),
        device=_device(where),
        dtype=_words(where.get("dtype")),
        warmed_up=[t for t in warmup.get("targets") or [] if isinstance(t, str)],
        warmup_calls=calls if isinstance(calls, int) else None,
        figures=[
            FigureView(
                figure=str(figure),
                condition=condition or "",
                candidate=pair.get("candidate"),
                baseline=pair.get("baseline"),
                backend=backend,
                device=device,
                dtype=dtype,
            )
            for (figure, condition, backend, device, dtype), pair in values.items()
        ],
        pressure=_pressure(_mapping(performance.get("pressure"))),
    )


def _pressure(pressure: Mapping[str, Any]) -> PressureView | None:
    share = finite(pressure.get("tenant_share"))
    counts = [
        v
        for k in ("tenants", "slots", "adapter_loads", "swaps", "candidate_loads")
        if isinstance(v := pressure.get(k), int) and not isinstance(v, bool)
    ]
    if share is None or len(counts) != 5:
        return None
    tenants, slots, loads, swaps, candidate_loads = counts
    return PressureView(
        tenants=tenants,
        slots=slots,
        tenant_share=share,
        counted=pressure.get("counted") is True,
        adapter_loads=loads,
        swaps=swaps,
        candidate_loads=candidate_loads,
    )


def _device(where: Mapping[str, Any]) -> str | None:
    device, name = _words(where.get("device")), _words(where.get("device_name"))
    return f"{device} ({name})" if device and name and name != device else device


def _words(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def compare_outputs(report: Mapping[str, Any]) -> tuple[list[OutputComparison], int]:
    """(outputs the candidate changed, how many it left unchanged), each against the
    baseline's output, or the base model's where the environment has no baseline yet."""
    items = report.get("items") or report.get("outputs") or []
    changed, unchanged = [], 0
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, Mapping):
            continue
        candidate = _text(item.get("candidate"))
        if candidate is None:
            continue  # an item scored without generating (a log-likelihood item)
        reference: Literal["baseline", "base"] = "baseline"
        against = _text(item.get("baseline"))
        if against is None and _text(item.get("base")) is not None:
            reference, against = "base", _text(item.get("base"))
        if against == candidate:
            unchanged += 1
            continue
        changed.append(
            OutputComparison(
                id=str(item.get("id", index)),
                prompt=_prompt(item.get("prompt")),
                reference=reference,
                baseline=against,
                candidate=candidate,
            )
        )
    return changed, unchanged


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _text(value.get("output", value.get("text")))
    return None


def _prompt(value: Any) -> str:
    if isinstance(value, list):  # chat turns
        turns = [t for t in value if isinstance(t, Mapping)]
        return "\n".join(f"{t.get('role', '?')}: {t.get('content', '')}" for t in turns)
    return value if isinstance(value, str) else ""


def finite(value: Any) -> float | None:
    """A finite number as a float; None for anything else (NaN, a string, a boolean)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def read_report(store: ArtifactStore, digest: str, max_bytes: int) -> dict[str, Any]:
    """The report JSON stored under `digest`, checked against it; bounded in size."""
    try:
        path = store.blob_path(digest.removeprefix("sha256:"))
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except (StoreError, OSError) as exc:
        raise EvidenceUnreadable(f"evaluation report {digest} is not in the store ({exc})") from exc
    if len(data) > max_bytes:
        raise EvidenceUnreadable(f"evaluation report {digest} exceeds {max_bytes} bytes")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise EvidenceUnreadable(f"evaluation report {digest} does not match its digest")
    try:
        report = json.loads(data)
    except ValueError as exc:
        raise EvidenceUnreadable(f"evaluation report {digest} is not JSON: {exc}") from exc
    if not isinstance(report, dict):
        raise EvidenceUnreadable(f"evaluation report {digest} is not a JSON object")
    return report
