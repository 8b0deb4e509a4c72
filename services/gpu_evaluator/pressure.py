"""Multi-tenant pressure: the load profile replayed once more with other tenants' adapters
in the stream, in the environment's slots.

The other tenants (stand-ins of the candidate's shape, `tenants.py`) are made resident
before traffic, as on a serving engine that already holds them; beyond the slots the
earliest are swapped out again at once. Candidate and baseline are touched last, so they
start resident too. Then the same arrivals as the warm replay, a `tenant_share` of them
sent to the others, at most `slots` distinct adapters in a batch: the candidate's and the
baseline's latency under that pressure, and how many loads and swaps it took. On the
transformers backend the slots are the PeftModel's resident adapters (least recently used
deleted beyond them); on vLLM they are the engine's own `max_loras`, and vLLM swaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.gpu_evaluator.load import LoadProfile, LoadResult, load_prompts, replay, schedule
from services.gpu_evaluator.ports import (
    AdapterRef,
    AdapterSlots,
    BackendError,
    EvaluationBackend,
    Prompt,
    Target,
)
from services.gpu_evaluator.tenants import StandInError, parse_tenants, write_stand_ins


@dataclass(frozen=True, slots=True, kw_only=True)
class PressureRun:
    slots: int
    tenants: int
    tenant_share: float
    load: LoadResult  # targets 0 (candidate), 1 (baseline, if any), then the tenants
    counted: bool  # whether the backend counts its adapter loads (below)
    loads: int  # adapter loads during the replay
    swaps: int  # adapters evicted to make room during the replay
    candidate_loads: int  # times the candidate itself was loaded again during it


def stand_ins(candidate: AdapterRef, numbers: range, root: Path) -> list[AdapterRef]:
    """Stand-ins of the candidate; weights that cannot be copied are the revision's (the
    validator admits only safetensors, so the runtime could not load them either)."""
    try:
        return write_stand_ins(candidate, numbers, root)
    except (StandInError, OSError) as exc:
        raise BackendError(str(exc)) from exc


def run_pressure(
    backend: EvaluationBackend,
    profile: LoadProfile,
    targets: Sequence[AdapterRef],
    seeds: Sequence[Prompt],
    *,
    slots: int,
    root: Path,
) -> PressureRun | None:
    """The pressured replay; None when the profile asks for no other tenants here."""
    count = parse_tenants(profile.tenants).resolve(slots=slots, ours=len(targets))
    if count == 0:
        return None
    tenants = stand_ins(targets[0], range(1, count + 1), root)
    for tenant in tenants:
        backend.generate([seeds[0]], tenant, max_new_tokens=1)
    everyone: list[Target] = [*targets, *tenants]
    backend.generate([seeds[0]] * len(targets), list(targets), max_new_tokens=1)
    counter = backend if isinstance(backend, AdapterSlots) else None
    before = counter.adapter_counts() if counter is not None else None
    arrivals = schedule(profile, len(targets), tenants=count)
    prompts = load_prompts(arrivals, seeds, profile.seed)
    result = replay(backend, profile, everyone, arrivals, prompts, slots=slots)
    moved = (
        counter.adapter_counts().since(before)
        if counter is not None and before is not None
        else None
    )
    if counter is not None:
        for tenant in tenants:  # their folders go with the evaluation: free the slots now
            counter.evict(tenant)
    return PressureRun(
        slots=slots,
        tenants=count,
        tenant_share=profile.tenant_share,
        load=result,
        counted=moved is not None,
        loads=moved.total_loads if moved else 0,
        swaps=moved.evictions if moved else 0,
        candidate_loads=moved.of(targets[0]) if moved else 0,
    )
