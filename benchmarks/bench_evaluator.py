"""Evaluation throughput of the transformers backend on the tiny kit: the golden suite in
left-padded batches against the same prompts one at a time, measured in the same run on
the same loaded model, plus one whole evaluation (base, candidate, baseline, load).

    .venv/bin/python -m benchmarks.bench_evaluator [--repeat 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Figure, write_report
from services.gpu_evaluator.evaluation import Plan, run_evaluation
from services.gpu_evaluator.load import load_profile
from services.gpu_evaluator.ports import AdapterRef, Prompt
from services.gpu_evaluator.suites import load_suite
from services.gpu_evaluator.transformers_backend import TransformersBackend
from shared.modelkit.cache import kit

SUITES = REPO / "tests" / "data" / "suites"


def timed_answers(
    backend: TransformersBackend, prompts: list[Prompt], adapter: AdapterRef, batch_size: int
) -> tuple[float, list[str]]:
    backend.batch_size = batch_size
    started = time.perf_counter()
    answers = backend.generate(prompts, adapter, max_new_tokens=8)
    return time.perf_counter() - started, [a.text for a in answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=4, help="copies of the suite's prompts")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each mode")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    tiny = kit()
    backend = TransformersBackend(tiny.base, device="cpu")
    suite = load_suite(SUITES, "bench", "staging")
    prompts = [i.prompt for i in suite.items if i.generates] * args.repeat
    good = AdapterRef("bench", tiny.revisions["good"], Path(tiny.good))
    backend.generate(prompts[:2], good, max_new_tokens=2)  # load the adapter, warm the kernels

    batched: list[float] = []
    single: list[float] = []
    same = True
    for _ in range(args.rounds):  # interleaved, so drift in the machine hits both modes
        seconds, batched_answers = timed_answers(backend, prompts, good, args.batch_size)
        batched.append(seconds)
        seconds, single_answers = timed_answers(backend, prompts, good, 1)
        single.append(seconds)
        same = same and batched_answers == single_answers
    backend.batch_size = args.batch_size

    plan = Plan(
        suite=suite,
        candidate=AdapterRef("bench", tiny.revisions["shuffled"], Path(tiny.shuffled)),
        baseline=good,
        load=load_profile(SUITES / "load", "staging"),
    )
    whole = run_evaluation(backend, plan)
    rate_batched = len(prompts) / statistics.median(batched)
    rate_single = len(prompts) / statistics.median(single)
    details: dict[str, Any] = {
        "prompts": len(prompts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "batched_s": [round(s, 4) for s in batched],
        "one_at_a_time_s": [round(s, 4) for s in single],
        "answers_identical": same,
        "whole_evaluation_s": round(whole.duration_s, 3),
        "load_requests_served": len(whole.load.served) if whole.load else 0,
        "backend": backend.describe(),
    }
    write_report(
        "evaluator",
        [
            Figure(
                name=f"suite prompts/s, batches of {args.batch_size}",
                value=rate_batched,
                baseline=rate_single,
                unit="prompts/s",
                baseline_name="one prompt at a time",
                higher_is_better=True,
            )
        ],
        details,
    )
    if not same:
        raise SystemExit("batched answers differ from one-at-a-time answers")


if __name__ == "__main__":
    main()
