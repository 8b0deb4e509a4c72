"""The evaluation report: every answer, score, latency and verdict, as canonical JSON.

Stored content-addressed in the artifact store; its digest goes into the lifecycle
event, so an approver signs exactly the evidence they read.

`performance` says how every performance figure was taken: each row of `figures` names the
figure, the target, the condition (warm, under pressure, cold load) and the backend, device
and dtype that produced it; `warmup` what answered before any latency was measured and
each adapter's cold load; `pressure` the other tenants, slots, loads and swaps.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from services.gpu_evaluator.evaluation import EvaluationRun, Plan, TargetRun, score
from services.gpu_evaluator.gates import GateDecision
from services.gpu_evaluator.load import LoadResult
from services.gpu_evaluator.pressure import PressureRun
from services.gpu_evaluator.warmup import Warmup
from shared.artifacts import ArtifactStore
from shared.manifest import Manifest

SCHEMA = "adapters.evaluation_report.v1"


def build_report(
    *,
    manifest: Manifest,
    environment: str,
    plan: Plan,
    run: EvaluationRun,
    metrics: Mapping[str, Mapping[str, float] | None],
    decision: GateDecision,
    backend: Mapping[str, Any],
    evaluated_at: datetime,
) -> dict[str, Any]:
    suite = plan.suite
    return {
        "schema": SCHEMA,
        "adapter": manifest.adapter,
        "revision": manifest.revision,
        "environment": environment,
        "manifest_digest": manifest.digest,
        "base_model": {"id": manifest.base_model_id, "revision": manifest.base_model_revision},
        "baseline_revision": plan.baseline.revision if plan.baseline else None,
        "backend": dict(backend),
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "owner": suite.owner,
            "digest": suite.digest,
            "source": suite.source,
            "gates": {name: asdict(gate) for name, gate in suite.gates.items()},
        },
        "load_profile": plan.load.as_dict() if plan.load else None,
        "evaluated_at": evaluated_at.isoformat(),
        "duration_s": round(run.duration_s, 3),
        "passed": decision.passed,
        "metrics": {k: _clean(v) if v is not None else None for k, v in metrics.items()},
        "gates": [asdict(m) for m in decision.metrics],
        "findings": [asdict(f) for f in decision.findings],
        "items": _items(plan, run),
        "load": _load(run.load) if run.load else None,
        "performance": performance_section(run, metrics, backend),
    }


# Each performance figure, in the order an approver reads them.
FIGURES = (
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens_per_s",
    "cold_load_ms",
    "latency_p50_ms_under_pressure",
    "latency_p95_ms_under_pressure",
    "tokens_per_s_under_pressure",
)


def provenance(backend: Mapping[str, Any]) -> dict[str, Any]:
    """The backend, device and dtype that produced a figure, as the backend describes itself."""
    return {
        "backend": backend.get("name", backend.get("backend")),
        "device": backend.get("device"),
        "device_name": backend.get("device_name"),
        "dtype": backend.get("dtype"),
    }


def performance_section(
    run: EvaluationRun,
    metrics: Mapping[str, Mapping[str, float] | None],
    backend: Mapping[str, Any],
) -> dict[str, Any]:
    where = provenance(backend)
    conditions = {
        "cold_load_ms": "adapter unloaded first: loading it and answering one suite prompt",
    }
    warm = "warm, under the load profile" if run.load else "warm, the suite's own calls"
    conditions |= dict.fromkeys(("latency_p50_ms", "latency_p95_ms", "tokens_per_s"), warm)
    if run.pressure is not None:
        pressed = (
            f"under pressure: {run.pressure.tenants} other tenants' adapters, "
            f"{run.pressure.slots} slots"
        )
        conditions |= {name: pressed for name in FIGURES if name.endswith("_under_pressure")}
    figures = [
        {
            "figure": name,
            "target": role,
            "condition": conditions.get(name, ""),
            "value": _number(values[name]),
            **where,
        }
        for name in FIGURES
        for role, values in metrics.items()
        if values is not None and name in values
    ]
    return {
        "measured_on": where,
        "warmup": _warmup(run.warmup) if run.warmup else None,
        "figures": figures,
        "pressure": _pressure(run.pressure) if run.pressure else None,
    }


def _warmup(warmup: Warmup) -> dict[str, Any]:
    return {
        "targets": list(warmup.targets),
        "calls": warmup.calls,
        "seconds": round(warmup.seconds, 3),
        "cold_loads": [
            {
                "target": c.target,
                "cold_ms": _number(c.cold_s * 1000) if c.cold_s is not None else None,
                "warm_ms": _number(c.warm_s * 1000),
                "loads": c.loads,
            }
            for c in warmup.cold_loads
        ],
    }


def _pressure(pressure: PressureRun) -> dict[str, Any]:
    load = pressure.load
    ours = {0: "candidate", 1: "baseline"}
    return {
        "slots": pressure.slots,
        "tenants": pressure.tenants,
        "tenant_share": pressure.tenant_share,
        "stand_ins": "the candidate's own weights, each tensor's elements rotated: its "
        "shape, rank, dtype and size under another name",
        "counted": pressure.counted,
        "adapter_loads": pressure.loads,
        "swaps": pressure.swaps,
        "candidate_loads": pressure.candidate_loads,
        "duration_s": round(load.duration_s, 3),
        "batches": load.batches,
        "unserved": load.unserved,
        "requests": {
            "candidate": sum(1 for s in load.served if s.target == 0),
            "baseline": sum(1 for s in load.served if s.target == 1),
            "tenants": sum(1 for s in load.served if s.target not in ours),
        },
        "by_target": {
            name: asdict(stats) if (stats := load.stats(i)) else None for i, name in ours.items()
        },
    }


def _items(plan: Plan, run: EvaluationRun) -> list[dict[str, Any]]:
    runs: dict[str, TargetRun | None] = {"candidate": run.candidate, "baseline": run.baseline}
    scored = {
        name: {row.item.id: row.score for row in score(plan.suite, r)} if r else {}
        for name, r in runs.items()
    }
    items = []
    for item in plan.suite.items:
        entry: dict[str, Any] = {
            "id": item.id,
            "prompt": [asdict(m) for m in item.prompt],
            "expect": {k: v for k, v in asdict(item.expect).items() if v not in (None, ())},
            "weight": item.weight,
            "tags": list(item.tags),
            "must_change": item.must_change,
        }
        if item.id in run.base.outputs:
            entry["base"] = {"output": run.base.outputs[item.id].text}
        for name, target in runs.items():
            if target is None:
                continue
            generation = target.outputs.get(item.id)
            result = scored[name][item.id]
            loglik = target.logliks.get(item.id)
            entry[name] = {
                "output": result.output,
                "passed": result.passed,
                "checks": result.checks,
                "loglik": _number(loglik.mean) if loglik else None,
                "latency_ms": _number(generation.latency_s * 1000) if generation else None,
                "completion_tokens": generation.completion_tokens if generation else None,
            }
        items.append(entry)
    return items


def _load(result: LoadResult) -> dict[str, Any]:
    return {
        "duration_s": round(result.duration_s, 3),
        "batches": result.batches,
        "unserved": result.unserved,
        "by_target": {
            name: asdict(stats) if (stats := result.stats(i)) else None
            for i, name in enumerate(("candidate", "baseline"))
        },
        "requests": [asdict(s) for s in result.served],
    }


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _clean(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: _number(v) for k, v in sorted(metrics.items())}


def report_bytes(report: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, no NaN (JSON has none)."""
    text = json.dumps(_finite(report), sort_keys=True, indent=1, ensure_ascii=False)
    return text.encode() + b"\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def store_report(store: ArtifactStore, data: bytes, *, max_bytes: int) -> tuple[str, str]:
    """(digest, uri) of the report, written once into the content-addressed store."""
    entry = store.put_stream(io.BytesIO(data), max_bytes=max_bytes)
    return "sha256:" + entry.sha256, f"artifact://blobs/sha256/{entry.sha256}"
