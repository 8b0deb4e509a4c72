"""One evaluation in one environment: the suite on the base, the candidate and the
baseline while the load profile replays against the same backend, then the metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.gpu_evaluator.load import (
    LoadProfile,
    LoadResult,
    LoadStats,
    load_prompts,
    percentile,
    replay,
    schedule,
)
from services.gpu_evaluator.ports import (
    AdapterRef,
    EvaluationBackend,
    Generation,
    LogLikelihood,
    Target,
)
from services.gpu_evaluator.scoring import ScoreRow, no_op_rate, quality_metrics, score_items
from services.gpu_evaluator.suites import Suite


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    suite: Suite
    candidate: AdapterRef
    baseline: AdapterRef | None = None
    load: LoadProfile | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetRun:
    outputs: Mapping[str, Generation] = field(default_factory=dict)  # by item id
    logliks: Mapping[str, LogLikelihood] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationRun:
    base: TargetRun
    candidate: TargetRun
    baseline: TargetRun | None
    load: LoadResult | None
    duration_s: float


def run_suite(
    backend: EvaluationBackend, suite: Suite, target: Target, *, loglik: bool = True
) -> TargetRun:
    """The suite's answers (and reference log-likelihoods) from one target, batched."""
    generating = [i for i in suite.items if i.generates]
    outputs = backend.generate(
        [i.prompt for i in generating], target, max_new_tokens=suite.max_new_tokens
    )
    referenced = [i for i in suite.items if i.expect.reference is not None] if loglik else []
    logliks = (
        backend.loglik(
            [i.prompt for i in referenced], [str(i.expect.reference) for i in referenced], target
        )
        if referenced
        else []
    )
    return TargetRun(
        outputs={i.id: g for i, g in zip(generating, outputs, strict=True)},
        logliks={i.id: ll for i, ll in zip(referenced, logliks, strict=True)},
    )


def run_evaluation(backend: EvaluationBackend, plan: Plan) -> EvaluationRun:
    """Base (for the no-op check), candidate and baseline on the suite, under the load
    profile replayed in a second thread; a failure in either raises after both stop."""
    started = time.perf_counter()
    targets: list[Target] = [plan.candidate]
    if plan.baseline is not None:
        targets.append(plan.baseline)
    load_result: list[LoadResult] = []
    load_error: list[BaseException] = []
    stop = threading.Event()

    def pressure() -> None:
        assert plan.load is not None
        arrivals = schedule(plan.load, len(targets))
        prompts = load_prompts(arrivals, [i.prompt for i in plan.suite.items], plan.load.seed)
        try:
            load_result.append(replay(backend, plan.load, targets, arrivals, prompts, stop=stop))
        except BaseException as exc:  # re-raised below, in the evaluating thread
            load_error.append(exc)

    worker = threading.Thread(target=pressure, name="load-replay", daemon=True)
    if plan.load is not None:
        # Adapters load before traffic, as on a serving engine: loading is not latency.
        backend.generate([plan.suite.items[0].prompt] * len(targets), targets, max_new_tokens=1)
        worker.start()
    try:
        base = run_suite(backend, plan.suite, None, loglik=False)
        candidate = run_suite(backend, plan.suite, plan.candidate)
        baseline = run_suite(backend, plan.suite, plan.baseline) if plan.baseline else None
    except BaseException:
        stop.set()
        raise
    finally:
        if worker.is_alive():
            worker.join()
    if load_error:
        raise load_error[0]
    return EvaluationRun(
        base=base,
        candidate=candidate,
        baseline=baseline,
        load=load_result[0] if load_result else None,
        duration_s=time.perf_counter() - started,
    )


def score(suite: Suite, run: TargetRun) -> list[ScoreRow]:
    return score_items(
        suite,
        {k: g.text for k, g in run.outputs.items()},
        {k: ll.mean for k, ll in run.logliks.items()},
    )


def target_metrics(
    suite: Suite, run: TargetRun, base: TargetRun, load: LoadStats | None
) -> dict[str, float]:
    """Quality, no-op and performance metrics of one target (performance from the load
    replay when there was one, else from the suite's own calls)."""
    metrics = quality_metrics(score(suite, run))
    no_op = no_op_rate(
        suite.items,
        {k: g.text for k, g in run.outputs.items()},
        {k: g.text for k, g in base.outputs.items()},
    )
    if no_op is not None:
        metrics["no_op_rate"] = no_op[0]
    metrics.update(performance(load) if load else suite_performance(list(run.outputs.values())))
    return metrics


def performance(stats: LoadStats) -> dict[str, float]:
    return {
        "latency_p50_ms": stats.p50_ms,
        "latency_p95_ms": stats.p95_ms,
        "tokens_per_s": stats.tokens_per_s,
    }


def suite_performance(generations: Sequence[Generation]) -> dict[str, float]:
    if not generations:
        return {}
    latencies = [g.latency_s for g in generations]
    busy = sum(latencies)
    return {
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p95_ms": percentile(latencies, 95) * 1000,
        "tokens_per_s": sum(g.completion_tokens for g in generations) / busy if busy else 0.0,
    }
