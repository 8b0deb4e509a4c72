"""Multi-tenant pressure without a model: how many tenants a profile asks for, their
arrivals, batches that hold at most the environment's slots, stand-ins of the candidate's
shape, and the load and swap counts. (On the real transformers backend and the tiny kit:
test_evaluator_backend.py; on vLLM's engine interface: test_evaluator_vllm.py.)"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from services.gpu_evaluator.evaluation import Plan, run_evaluation, run_metrics
from services.gpu_evaluator.load import (
    Arrival,
    LoadProfile,
    ProfileError,
    next_batch,
    parse_profile,
    replay,
    schedule,
)
from services.gpu_evaluator.ports import (
    AdapterCounts,
    AdapterRef,
    AdapterSlots,
    Generation,
    LogLikelihood,
    Prompt,
    Target,
    per_prompt,
    user_prompt,
)
from services.gpu_evaluator.suites import parse_suite
from services.gpu_evaluator.tenants import (
    StandInError,
    Tenants,
    TenantsError,
    parse_tenants,
    write_stand_ins,
)
from shared.safetensors_header import read_header_file
from tests.fakes.evaluator import SUITE

SUITES = Path(__file__).resolve().parents[1] / "data" / "suites"
A = AdapterRef("bot", "sha256:" + "a" * 64, Path("/a"))
B = AdapterRef("bot", "sha256:" + "b" * 64, Path("/b"))
T = [AdapterRef(f"other-{i}", "sha256:" + str(i) * 64, Path(f"/t{i}")) for i in range(1, 5)]


@pytest.mark.parametrize(
    ("text", "slots", "ours", "others"),
    [
        ("", 4, 2, 0),
        ("0", 4, 2, 0),
        ("3", 4, 2, 3),
        ("slots", 4, 2, 2),  # fills the slots beside candidate and baseline
        ("slots", 4, 1, 3),  # a first revision: no baseline takes a slot
        ("slots+2", 4, 2, 4),  # two more than fit: swaps
        ("SLOTS + 2", 4, 2, 4),
        ("slots", 2, 2, 0),  # no free slot: nobody to fill it
        ("slots+1", 1, 2, 1),
    ],
)
def test_tenants_are_a_count_or_relative_to_the_environments_slots(
    text: str, slots: int, ours: int, others: int
) -> None:
    assert parse_tenants(text).resolve(slots=slots, ours=ours) == others


@pytest.mark.parametrize("text", ["lots", "-1", "slots-1", "slots+", "2.5", "max_loras"])
def test_a_tenants_value_that_is_no_count_nor_slots_is_refused(text: str) -> None:
    with pytest.raises(TenantsError, match=r"write a count, `slots`, or `slots\+N`"):
        parse_tenants(text)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("tenants: lots", "tenants 'lots'"),
        ("tenant_share: 1.0", "tenant_share must be between 0 and 1"),
        ("tenant_share: 0", "tenant_share must be between 0 and 1"),
    ],
)
def test_a_profile_with_bad_pressure_settings_is_refused_naming_the_file(
    line: str, message: str
) -> None:
    with pytest.raises(ProfileError, match=message) as raised:
        parse_profile(f"requests: 4\n{line}\n".encode(), source="prod.yaml")
    assert str(raised.value).startswith("prod.yaml: ")


def test_the_multi_tenant_profile_asks_for_two_tenants_beyond_the_slots() -> None:
    profile = parse_profile(
        (SUITES / "load" / "multi-tenant.yaml").read_bytes(), source="multi-tenant.yaml"
    )
    assert parse_tenants(profile.tenants) == Tenants(count=2, relative=True)
    assert profile.tenant_share == 0.5


def test_pressure_keeps_every_arrival_and_sends_a_share_of_them_to_the_tenants() -> None:
    profile = LoadProfile(requests=400, max_seconds=100, rate_per_s=4, tenant_share=0.25, seed=5)
    alone, pressed = schedule(profile, 2), schedule(profile, 2, tenants=3)
    assert [(a.at_s, a.words) for a in pressed] == [(a.at_s, a.words) for a in alone]
    targets = Counter(a.target for a in pressed)
    assert set(targets) == {0, 1, 2, 3, 4}  # candidate, baseline, three tenants
    assert 0.18 < sum(targets[t] for t in (2, 3, 4)) / len(pressed) < 0.32
    ours = [a.target for a in pressed if a.target < 2]
    assert ours[:6] == [0, 1, 0, 1, 0, 1]  # our own requests still alternate
    assert schedule(profile, 2, tenants=3) == pressed  # seeded


@pytest.mark.parametrize(
    ("targets", "slots", "batch"),
    [
        ([A, B, T[0], T[1], A], None, [0, 1, 2, 3]),  # no bound: the concurrency alone
        ([A, B, T[0], T[1], A], 2, [0, 1, 4]),  # the tenants wait for a later batch
        ([A, None, T[0], None, B], 1, [0, 1, 3]),  # the base model takes no slot
        ([T[0], T[0], T[0], T[1], T[0]], 1, [0, 1, 2, 4]),
    ],
)
def test_a_batch_holds_at_most_the_slots_distinct_adapters_earliest_first(
    targets: list[Target], slots: int | None, batch: list[int]
) -> None:
    profile = LoadProfile(concurrency=4)
    assert next_batch(range(len(targets)), targets, profile, slots) == batch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SlotBackend:
    """Fakes `EvaluationBackend` and `AdapterSlots` as an LRU of `slots` resident adapters:
    a batch costs 1 s of the clock, plus 2 s for each adapter it must load. The figures it
    produces are its own rules; what is tested is what the evaluator counts and reports."""

    name = "slots"

    def __init__(self, clock: Clock | None = None, *, slots: int = 8) -> None:
        self.clock = clock or Clock()
        self.slots = slots
        self.resident: OrderedDict[str, None] = OrderedDict()
        self.loads: Counter[str] = Counter()
        self.evictions = 0
        self.batches: list[list[Target]] = []

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "device": "abacus", "dtype": "int1"}

    def generate(
        self, prompts: Sequence[Prompt], adapter: Target | Sequence[Target], *, max_new_tokens: int
    ) -> list[Generation]:
        targets = per_prompt(adapter, len(prompts))
        self.batches.append(targets)
        needed = {t.revision for t in targets if t is not None}
        assert len(needed) <= self.slots, "a batch needs more adapters than the slots"
        started = self.clock.now
        for revision in needed:
            if revision in self.resident:
                self.resident.move_to_end(revision)
                continue
            while len(self.resident) >= self.slots:
                victim = next(r for r in self.resident if r not in needed)
                del self.resident[victim]
                self.evictions += 1
            self.resident[revision] = None
            self.loads[revision] += 1
            self.clock.now += 2.0
        self.clock.now += 1.0
        return [Generation("x", 3, 1, self.clock.now - started) for _ in prompts]

    def loglik(
        self, prompts: Sequence[Prompt], references: Sequence[str], adapter: Any
    ) -> list[LogLikelihood]:
        return [LogLikelihood(mean=-1.0, tokens=1) for _ in prompts]

    def adapter_counts(self) -> AdapterCounts:
        return AdapterCounts(loads=dict(self.loads), evictions=self.evictions)

    def evict(self, target: AdapterRef) -> bool:
        if target.revision not in self.resident:
            return False
        del self.resident[target.revision]
        return True

    @contextmanager
    def bounded_slots(self, slots: int) -> Iterator[int]:
        before, self.slots = self.slots, slots
        yield slots
        self.slots = before


def test_the_fake_is_what_the_evaluator_takes_for_a_backend_with_slots() -> None:
    assert isinstance(SlotBackend(), AdapterSlots)


def test_replay_with_more_tenants_than_slots_swaps_and_waits() -> None:
    clock = Clock()
    backend = SlotBackend(clock, slots=2)
    arrivals = [Arrival(0.0, 3, t) for t in (0, 2, 3, 0, 2)]
    result = replay(
        backend,
        LoadProfile(concurrency=4, max_seconds=100),
        [A, B, T[0], T[1]],
        arrivals,
        [user_prompt("p")] * len(arrivals),
        clock=clock,
        sleep=clock.sleep,
        slots=2,
    )
    assert backend.batches == [[A, T[0], A, T[0]], [T[1]]]
    assert backend.evictions == 1 and result.unserved == 0
    # The request that waited for a slot waited for the batch before it, loads included.
    assert [round(s.latency_s, 1) for s in result.served] == [5.0, 5.0, 5.0, 5.0, 8.0]


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(
        struct.pack("<Q", len(raw)) + raw + b"".join(d for _, _, d in tensors.values())
    )


@pytest.fixture
def candidate(tmp_path: Path) -> AdapterRef:
    folder = tmp_path / "candidate"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 2}')
    write_safetensors(
        folder / "adapter_model.safetensors",
        {
            "lora_A": ("F32", [2, 2], struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)),
            "lora_B": ("BF16", [3], bytes([1, 0, 2, 0, 3, 0])),
        },
    )
    return AdapterRef("bot", "sha256:" + "c" * 64, folder)


def test_stand_ins_keep_the_candidates_shape_with_other_bytes_and_names(
    candidate: AdapterRef, tmp_path: Path
) -> None:
    first, second = write_stand_ins(candidate, range(1, 3), tmp_path / "stand-ins")
    original = read_header_file(candidate.path / "adapter_model.safetensors")
    for stand_in in (first, second):
        weights = stand_in.path / "adapter_model.safetensors"
        assert read_header_file(weights).tensors == original.tensors
        assert (stand_in.path / "adapter_config.json").read_text() == '{"r": 2}'
    data = (first.path / "adapter_model.safetensors").read_bytes()[-22:]
    # Rotated by one element each: 2, 3, 4, 1 (f32) and 2, 3, 1 (bf16).
    assert data == struct.pack("<4f", 2.0, 3.0, 4.0, 1.0) + bytes([2, 0, 3, 0, 1, 0])
    assert len({candidate.revision, first.revision, second.revision}) == 3
    assert (first.adapter, second.adapter) == ("bot~1", "bot~2")


def test_weights_that_are_not_safetensors_cannot_stand_in(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x02pickle")
    with pytest.raises(StandInError, match=r"no adapter_config\.json and safetensors"):
        write_stand_ins(AdapterRef("bot", "sha256:" + "d" * 64, tmp_path), range(1), tmp_path)


def plan(candidate: AdapterRef, baseline: AdapterRef | None, tenants: str) -> Plan:
    suite = parse_suite(SUITE.encode(), source="capitals.yaml")
    profile = LoadProfile(requests=12, max_seconds=30, rate_per_s=50, tenants=tenants, seed=3)
    return Plan(suite=suite, candidate=candidate, baseline=baseline, load=profile, slots=3)


def test_more_tenants_than_slots_are_swapped_counted_and_never_batched_beyond_the_slots(
    candidate: AdapterRef,
) -> None:
    baseline = dataclasses.replace(candidate, revision="sha256:" + "e" * 64)
    backend = SlotBackend(slots=8)
    run = run_evaluation(backend, plan(candidate, baseline, "slots+2"))  # 3 tenants, 3 slots
    assert run.pressure is not None and run.pressure.counted
    assert (run.pressure.slots, run.pressure.tenants) == (3, 3)
    assert run.pressure.swaps > 0 and run.pressure.loads >= run.pressure.swaps
    assert max(len({t for t in b if t}) for b in backend.batches) <= 3
    metrics, base_metrics = run_metrics(plan(candidate, baseline, "").suite, run)
    for figures in (metrics, base_metrics or {}):
        assert {"cold_load_ms", "latency_p50_ms", "latency_p50_ms_under_pressure"} <= set(figures)
    assert backend.slots == 8  # the environment's bound held only during the evaluation
    assert set(backend.resident) <= {candidate.revision, baseline.revision}  # tenants gone


def test_tenants_that_fit_the_slots_are_loaded_before_traffic_and_never_swapped(
    candidate: AdapterRef,
) -> None:
    run = run_evaluation(SlotBackend(), plan(candidate, None, "slots"))
    assert run.pressure is not None and run.pressure.tenants == 2
    assert (run.pressure.loads, run.pressure.swaps, run.pressure.candidate_loads) == (0, 0, 0)


def test_every_target_is_warmed_up_and_each_cold_load_is_one_load(candidate: AdapterRef) -> None:
    baseline = dataclasses.replace(candidate, revision="sha256:" + "e" * 64)
    backend = SlotBackend()
    run = run_evaluation(backend, plan(candidate, baseline, ""))
    assert run.pressure is None and run.warmup is not None
    assert run.warmup.targets == ("base", "stand-in", "candidate", "baseline", "mixed")
    assert [(c.target, c.loads) for c in run.warmup.cold_loads] == [
        ("candidate", 1),
        ("baseline", 1),
    ]
    assert all(c.cold_s is not None for c in run.warmup.cold_loads)


def test_a_backend_that_cannot_unload_gives_no_cold_load_figure() -> None:
    from tests.fakes.evaluator import ScriptedBackend

    suite = parse_suite(SUITE.encode(), source="capitals.yaml")
    run = run_evaluation(ScriptedBackend(), Plan(suite=suite, candidate=A, slots=3))
    assert run.warmup is not None and run.warmup.targets == ("base", "candidate")
    assert [c.cold_s for c in run.warmup.cold_loads] == [None]
    metrics, _ = run_metrics(suite, run)
    assert "cold_load_ms" not in metrics and "latency_p50_ms" in metrics
