"""Multi-tenant pressure on the evaluator (issue 19): the candidate's latency and throughput
with other tenants' adapters filling the serving slots (and beyond, forcing swaps) against
the same arrivals served warm beside the baseline alone, in the same evaluation on the same
loaded model; plus each adapter's cold-load time. The transformers backend on this machine
(CPU here; CUDA where `make gpu-check` runs), the tiny kit, the multi-tenant load profile.

    .venv/bin/python -m benchmarks.bench_evaluator_pressure [--rounds 3] [--slots 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from typing import Any

from benchmarks.common import REPO, Figure, write_report
from services.gpu_evaluator.evaluation import Plan, run_evaluation, run_metrics
from services.gpu_evaluator.load import parse_profile
from services.gpu_evaluator.ports import AdapterRef
from services.gpu_evaluator.suites import load_suite
from services.gpu_evaluator.transformers_backend import TransformersBackend
from shared.modelkit.cache import kit

SUITES = REPO / "tests" / "data" / "suites"
PROFILE = SUITES / "load" / "multi-tenant.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="evaluations (default: 3)")
    parser.add_argument("--slots", type=int, default=3, help="adapter slots (default: 3)")
    parser.add_argument("--requests", type=int, default=32, help="load requests (default: 32)")
    args = parser.parse_args()
    tiny = kit()
    backend = TransformersBackend(
        tiny.base, device="cpu", batch_size=16, max_loaded_adapters=args.slots + 1
    )
    suite = load_suite(SUITES, "any-adapter", "staging")
    profile = dataclasses.replace(
        parse_profile(PROFILE.read_bytes(), source=PROFILE.name),
        requests=args.requests,
        max_seconds=3,
    )

    def ref(kind: str) -> AdapterRef:
        return AdapterRef("capitals-bot", tiny.revisions[kind], tiny.adapter(kind))

    rounds: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        run = run_evaluation(
            backend,
            Plan(
                suite=suite,
                candidate=ref("good"),
                baseline=ref("shuffled"),
                load=profile,
                slots=args.slots,
            ),
        )
        candidate, _ = run_metrics(suite, run)
        pressure = run.pressure
        assert pressure is not None and pressure.counted, "the profile put no pressure on"
        rounds.append(
            {
                **{k: candidate[k] for k in sorted(candidate) if "latency" in k or "tokens" in k},
                "cold_load_ms": candidate["cold_load_ms"],
                "tenants": pressure.tenants,
                "slots": pressure.slots,
                "swaps": pressure.swaps,
            }
        )

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)

    figures = [
        Figure(
            name=f"candidate p50 latency, {rounds[0]['tenants']} other tenants' adapters in "
            f"{args.slots} slots",
            value=median("latency_p50_ms_under_pressure"),
            baseline=median("latency_p50_ms"),
            unit="ms",
            baseline_name="warm, beside the baseline alone",
            higher_is_better=False,
        ),
        Figure(
            name="candidate p95 latency under pressure",
            value=median("latency_p95_ms_under_pressure"),
            baseline=median("latency_p95_ms"),
            unit="ms",
            baseline_name="warm",
            higher_is_better=False,
        ),
        Figure(
            name="candidate tokens/s under pressure",
            value=median("tokens_per_s_under_pressure"),
            baseline=median("tokens_per_s"),
            unit="tokens/s",
            baseline_name="warm",
            higher_is_better=True,
        ),
        Figure(
            name="candidate cold load",
            value=median("cold_load_ms"),
            baseline=median("latency_p50_ms"),
            unit="ms",
            baseline_name="one warm request (p50)",
            higher_is_better=False,
        ),
    ]
    write_report("evaluator_pressure", figures, {"rounds": rounds, "device": "cpu"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
