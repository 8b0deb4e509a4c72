"""One evaluation in one environment: every target warmed up, the suite on the base, the
candidate and the baseline while the load profile replays against the same backend, the
profile again under other tenants' pressure if it asks, then the metrics.

Adapters stay within the environment's `max_loras` throughout (`Plan.slots`)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

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
    AdapterSlots,
    EvaluationBackend,
    Generation,
    LogLikelihood,
    Target,
)
from services.gpu_evaluator.pressure import PressureRun, run_pressure, stand_ins
from services.gpu_evaluator.scoring import ScoreRow, no_op_rate, quality_metrics, score_items
from services.gpu_evaluator.suites import Suite
from services.gpu_evaluator.tenants import parse_tenants
from services.gpu_evaluator.warmup import Warmup, warm_up


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    suite: Suite
    candidate: AdapterRef
    baseline: AdapterRef | None = None
    load: LoadProfile | None = None
    slots: int | None = None  # the environment's max_loras: adapters resident at most


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
    warmup: Warmup | None = None
    pressure: PressureRun | None = None


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
    """Warm-up (cold loads timed), then base (for the no-op check), candidate and baseline
    on the suite under the load profile, then the profile under pressure if it asks."""
    started = time.perf_counter()
    adapters = {"candidate": plan.candidate}
    if plan.baseline is not None:
        adapters["baseline"] = plan.baseline
    pressed = plan.load is not None and parse_tenants(plan.load.tenants).asked
    if pressed and plan.slots is None:
        raise ValueError("a load profile with tenants needs the environment's slots")
    with ExitStack() as stack:
        slots = plan.slots
        if slots is not None and isinstance(backend, AdapterSlots):
            slots = stack.enter_context(backend.bounded_slots(slots))
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stand-ins-")))
        stand_in = None
        if isinstance(backend, AdapterSlots):
            [stand_in] = stand_ins(plan.candidate, range(1), root)
        warmup = warm_up(
            backend,
            plan.suite,
            adapters,
            stand_in=stand_in,
            mixed=(plan.load.concurrency, plan.load.max_new_tokens) if plan.load else None,
            slots=slots,
        )
        base, candidate, baseline, load = measure(backend, plan, list(adapters.values()), slots)
        pressure = None
        if pressed and plan.load is not None and slots is not None:
            seeds = [i.prompt for i in plan.suite.items]
            pressure = run_pressure(
                backend, plan.load, list(adapters.values()), seeds, slots=slots, root=root
            )
    return EvaluationRun(
        base=base,
        candidate=candidate,
        baseline=baseline,
        load=load,
        duration_s=time.perf_counter() - started,
        warmup=warmup,
        pressure=pressure,
    )


def measure(
    backend: EvaluationBackend, plan: Plan, targets: list[Target], slots: int | None
) -> tuple[TargetRun, TargetRun, TargetRun | None, LoadResult | None]:
    """The suite on each target, the load profile replayed in a second thread meanwhile;
    a failure in either raises after both stop."""
    load_result: list[LoadResult] = []
    load_error: list[BaseException] = []
    stop = threading.Event()

    def replay_load() -> None:
        assert plan.load is not None
        arrivals = schedule(plan.load, len(targets))
        prompts = load_prompts(arrivals, [i.prompt for i in plan.suite.items], plan.load.seed)
        try:
            load_result.append(
                replay(backend, plan.load, targets, arrivals, prompts, stop=stop, slots=slots)
            )
        except BaseException as exc:  # re-raised below, in the evaluating thread
            load_error.append(exc)

    worker = threading.Thread(target=replay_load, name="load-replay", daemon=True)
    if plan.load is not None:
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
    return base, candidate, baseline, load_result[0] if load_result else None


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


def run_metrics(
    suite: Suite, run: EvaluationRun
) -> tuple[dict[str, float], dict[str, float] | None]:
    """The candidate's metrics and the baseline's: `target_metrics`, plus each one's cold
    load and, under pressure, its latency and throughput there (never gated: figures)."""
    stats = run.load.stats if run.load else None
    found: list[dict[str, float]] = []
    for index, target in enumerate((run.candidate, run.baseline)):
        if target is None:
            continue
        metrics = target_metrics(suite, target, run.base, stats(index) if stats else None)
        metrics.update(measured_figures(run, index))
        found.append(metrics)
    return found[0], found[1] if len(found) > 1 else None


def measured_figures(run: EvaluationRun, index: int) -> dict[str, float]:
    """Target `index`'s cold-load time and its figures under pressure, where measured."""
    figures: dict[str, float] = {}
    cold = run.warmup.cold_loads if run.warmup else ()
    cold_s = cold[index].cold_s if index < len(cold) else None
    if cold_s is not None:
        figures["cold_load_ms"] = cold_s * 1000
    pressed = run.pressure.load.stats(index) if run.pressure else None
    if pressed is not None:
        figures.update({f"{k}_under_pressure": v for k, v in performance(pressed).items()})
    return figures


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
