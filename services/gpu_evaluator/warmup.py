"""Warm-up before any latency is measured, and each adapter's cold load timed on the way.

A first call pays for what later ones do not (CUDA context and kernels, the allocator
growing, PEFT wrapping the base around its first adapter): on an H200 the first
evaluation's p95 was 1.9 s against 0.6 s later, same prompts. So before any figure is
taken every target answers the suite's prompts: the base model, a stand-in adapter of the
candidate's shape (so the adapter path is warm before the candidate's own load is timed),
the candidate, the baseline, and a batch mixing them as the load replay will. Each
adapter's cold load is timed in between: unloaded if resident, one suite prompt answered
(loading plus the first answer), then the same prompt again, resident.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.gpu_evaluator.ports import (
    AdapterRef,
    AdapterSlots,
    EvaluationBackend,
    Prompt,
    Target,
)
from services.gpu_evaluator.suites import Suite

WARM_PROMPTS = 8  # the suite's first prompts, one batch per target


@dataclass(frozen=True, slots=True)
class ColdLoad:
    target: str  # "candidate" | "baseline"
    cold_s: float | None  # loading + first answer; None: it could not be made cold here
    warm_s: float  # the same request again, resident
    loads: int  # adapter loads the first request caused: 1 when it really was cold


@dataclass(frozen=True, slots=True)
class Warmup:
    calls: int
    seconds: float
    targets: tuple[str, ...]  # what answered before measuring: base, stand-in, candidate, ...
    cold_loads: tuple[ColdLoad, ...]


def warm_up(
    backend: EvaluationBackend,
    suite: Suite,
    adapters: dict[str, AdapterRef],
    *,
    stand_in: AdapterRef | None = None,
    mixed: tuple[int, int] | None = None,
    slots: int | None = None,
) -> Warmup:
    """Warm every target of `adapters` (by role: candidate, baseline) and the base; `mixed`
    is (batch size, max new tokens) of the load replay's mixed batches, when there is one,
    with no more distinct adapters than `slots`."""
    started = time.perf_counter()
    prompts = [i.prompt for i in suite.items if i.generates][:WARM_PROMPTS] or [
        suite.items[0].prompt
    ]
    tokens = suite.max_new_tokens
    backend.generate(prompts, None, max_new_tokens=tokens)
    calls, warmed = 1, ["base"]
    if stand_in is not None and isinstance(backend, AdapterSlots):
        backend.generate(prompts, stand_in, max_new_tokens=tokens)
        backend.evict(stand_in)
        calls, warmed = calls + 1, [*warmed, "stand-in"]
    cold: list[ColdLoad] = []
    for role, target in adapters.items():
        cold.append(time_cold_load(backend, role, target, prompts[0], tokens))
        backend.generate(prompts, target, max_new_tokens=tokens)
        calls, warmed = calls + 3, [*warmed, role]
    if mixed is not None and adapters:
        size, mixed_tokens = mixed
        targets: list[Target] = [*list(adapters.values())[: slots or None]]
        backend.generate(
            [prompts[i % len(prompts)] for i in range(size)],
            [targets[i % len(targets)] for i in range(size)],
            max_new_tokens=mixed_tokens,
        )
        calls, warmed = calls + 1, [*warmed, "mixed"]
    return Warmup(
        calls=calls,
        seconds=time.perf_counter() - started,
        targets=tuple(warmed),
        cold_loads=tuple(cold),
    )


def time_cold_load(
    backend: EvaluationBackend, role: str, target: AdapterRef, prompt: Prompt, tokens: int
) -> ColdLoad:
    """One request to `target` made cold (unloaded first), then the same one warm. A backend
    that cannot unload or count its adapters gives no cold figure: nothing proves it was."""
    slots = backend if isinstance(backend, AdapterSlots) else None
    if slots is not None:
        slots.evict(target)
        before = slots.adapter_counts()
    started = time.perf_counter()
    backend.generate([prompt], target, max_new_tokens=tokens)
    cold = time.perf_counter() - started
    loads = slots.adapter_counts().since(before).of(target) if slots is not None else 0
    started = time.perf_counter()
    backend.generate([prompt], target, max_new_tokens=tokens)
    warm = time.perf_counter() - started
    return ColdLoad(target=role, cold_s=cold if loads else None, warm_s=warm, loads=loads)
