"""Pipeline overhead: from a training cluster's `AdapterTrained` to `RevisionActivated` on the
lifecycle log, one promotion at a time (p50, p99), with the evaluation backend instant and
an approver bot that approves the moment the evaluation lands; against the raw Kafka round
trip (produce, wait for the ack, consume) measured in the same run, times the number of
Kafka hops the journey makes.

Everything else is real: ingest copies and hashes the adapter, the validator reads its
headers, the evaluator's handler writes its report, the approval service signs the
decision over HTTP, the activator loads the revision on two reference replicas and checks
they list it, and every transition is a registry commit published by the relay. The
per-stage breakdown in the report says where the time goes.

Hops: AdapterTrained on the trained topic, then RevisionRegistered, RevisionValidated,
RevisionEvaluated, RevisionApproved and RevisionActivated each through the lifecycle topic.

    make infra-up && .venv/bin/python -m benchmarks.bench_pipeline [--promotions 30]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_registry import raw_round_trip
from benchmarks.common import Figure, infra_env, infra_of, summary_ms, write_report
from tests.pipeline.driver import Pipeline

HOPS = 6
STAGES = (
    "RevisionRegistered",
    "RevisionValidated",
    "RevisionEvaluated",
    "RevisionApproved",
    "RevisionActivated",
)
WARMUP = 3


async def one_promotion(pipeline: Pipeline, prefix: str) -> dict[str, float]:
    """Submit one adapter; the seconds from its submission to each stage's first event."""
    start_index = len(pipeline.follower.snapshot())
    submissions = await pipeline.promote(1, bad_every=1_000, prefix=prefix)
    adapter = submissions[0].expected.adapter
    began = pipeline.submitted_at
    stamps: dict[str, float] = {}
    position = start_index
    deadline = began + 120
    while "RevisionActivated" not in stamps:
        records = pipeline.follower.snapshot()
        now = time.monotonic()
        for seen in records[position:]:
            if seen.adapter == adapter and seen.event_type in STAGES:
                stamps.setdefault(seen.event_type, now - began)
        position = len(records)
        if now > deadline:
            raise SystemExit(f"{adapter}: no RevisionActivated within 120 s; seen {stamps}")
        await asyncio.sleep(0.002)
    return stamps


async def run(promotions: int) -> dict[str, Any]:
    env = infra_env()
    infra = infra_of(env)
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    pipeline = await Pipeline.start(infra, root)
    try:
        runs = [await one_promotion(pipeline, f"warm{i}") for i in range(WARMUP)]
        runs = [await one_promotion(pipeline, f"p{i:03d}") for i in range(promotions)]
    finally:
        await pipeline.stop()
    raw = await asyncio.to_thread(raw_round_trip, infra.kafka, 300)
    stages: dict[str, dict[str, float]] = {}
    previous = [0.0] * len(runs)
    for stage in STAGES:
        stages[stage] = summary_ms([r[stage] - p for r, p in zip(runs, previous, strict=True)])
        previous = [r[stage] for r in runs]
    return {
        "journey": summary_ms([r["RevisionActivated"] for r in runs]),
        "stages_since_previous": stages,
        "raw_round_trip": raw,
        "logs": str(root),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--promotions", type=int, default=30)
    args = parser.parse_args()
    details = asyncio.run(run(args.promotions))
    journey, raw = details["journey"], details["raw_round_trip"]
    figures = [
        Figure(
            f"AdapterTrained->RevisionActivated {q}",
            journey[f"{q}_ms"],
            raw[f"{q}_ms"] * HOPS,
            "ms",
            f"raw Kafka round trip {q} x {HOPS} hops",
            higher_is_better=False,
        )
        for q in ("p50", "p99")
    ]
    write_report("pipeline", figures, {**details, "hops": HOPS, "promotions": args.promotions})
    for stage, summary in details["stages_since_previous"].items():
        print(f"  {stage:<20} p50 {summary['p50_ms']:8.1f} ms   p99 {summary['p99_ms']:8.1f} ms")


if __name__ == "__main__":
    main()
