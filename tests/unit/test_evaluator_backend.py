"""The transformers backend on the tiny kit's real base and real PEFT adapters (CPU).

One backend per test session, as one per evaluator process: the base loads once. Timings
are only ever compared within one run, never with a wall-clock threshold.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.gpu_evaluator.evaluation import (
    Plan,
    run_evaluation,
    run_metrics,
    run_suite,
    target_metrics,
)
from services.gpu_evaluator.gates import decide_gate
from services.gpu_evaluator.load import LoadProfile, load_profile, parse_profile
from services.gpu_evaluator.ports import AdapterRef, user_prompt
from services.gpu_evaluator.report import performance_section
from services.gpu_evaluator.scoring import quality_metrics
from services.gpu_evaluator.suites import Suite, load_suite, parse_suite
from services.gpu_evaluator.transformers_backend import TransformersBackend
from shared.modelkit.cache import Kit, kit

SUITES = Path(__file__).resolve().parents[1] / "data" / "suites"


@pytest.fixture(scope="session")
def tiny() -> Kit:
    return kit()


@pytest.fixture(scope="session")
def backend(tiny: Kit) -> Iterator[TransformersBackend]:
    yield TransformersBackend(tiny.base, device="cpu", batch_size=16, max_loaded_adapters=4)


@pytest.fixture(scope="session")
def capitals() -> Suite:
    return load_suite(SUITES, "any-adapter", "staging")


@pytest.fixture(scope="session")
def structured() -> Suite:
    return parse_suite((SUITES / "structured.yaml").read_bytes(), source="structured.yaml")


def ref(tiny: Kit, kind: str) -> AdapterRef:
    return AdapterRef("capitals-bot", tiny.revisions[kind], tiny.adapter(kind))


def answers(backend: TransformersBackend, suite: Suite, target: AdapterRef | None) -> list[str]:
    run = run_suite(backend, suite, target, loglik=False)
    return [run.outputs[i.id].text for i in suite.items if i.id in run.outputs]


def test_the_well_trained_adapter_answers_the_golden_suite_and_the_base_does_not(
    backend: TransformersBackend, tiny: Kit, capitals: Suite
) -> None:
    from services.gpu_evaluator.evaluation import score

    good = quality_metrics(score(capitals, run_suite(backend, capitals, ref(tiny, "good"))))
    base = quality_metrics(score(capitals, run_suite(backend, capitals, None)))
    assert good["accuracy"] >= 0.9
    assert base["accuracy"] <= 0.25
    assert good["mean_loglik"] > base["mean_loglik"] + 1.0


def test_the_no_op_adapter_answers_exactly_as_the_base_model(
    backend: TransformersBackend, tiny: Kit, capitals: Suite
) -> None:
    noop = answers(backend, capitals, ref(tiny, "noop"))
    assert noop == answers(backend, capitals, None)
    assert noop != answers(backend, capitals, ref(tiny, "good"))


def test_a_mixed_batch_gives_each_prompt_what_its_own_adapter_gives_alone(
    backend: TransformersBackend, tiny: Kit
) -> None:
    prompts = [user_prompt(f"what is the capital of {f.country}?") for f in tiny.facts[:3]]
    good, shuffled = ref(tiny, "good"), ref(tiny, "shuffled")
    mixed = backend.generate(
        prompts * 3, [good] * 3 + [shuffled] * 3 + [None] * 3, max_new_tokens=4
    )
    alone = [
        backend.generate(prompts, target, max_new_tokens=4) for target in (good, shuffled, None)
    ]
    assert [g.text for g in mixed] == [g.text for run in alone for g in run]
    assert [g.text for g in alone[0]] == [f.capital for f in tiny.facts[:3]]


def test_answers_report_their_token_counts_and_latency(
    backend: TransformersBackend, tiny: Kit
) -> None:
    [answer] = backend.generate(
        [user_prompt("what is the capital of peru?")], ref(tiny, "good"), max_new_tokens=8
    )
    assert answer.text == "lima"
    assert answer.completion_tokens == 2  # the word and the end-of-turn token
    assert answer.prompt_tokens > 5 and answer.latency_s > 0


def test_adapters_load_once_under_their_digest_and_a_new_digest_is_a_new_name(
    backend: TransformersBackend, tiny: Kit, tmp_path: Path
) -> None:
    good = ref(tiny, "good")
    backend.generate([user_prompt("hi")], good, max_new_tokens=1)
    before = backend.loaded_adapters()
    backend.generate([user_prompt("hi")], good, max_new_tokens=1)
    assert backend.loaded_adapters().count("rev_" + good.digest_hex) == 1
    assert len(backend.loaded_adapters()) == len(before)
    # Same adapter name and folder, other bytes: never served from the old entry.
    folder = tmp_path / "capitals-bot"
    shutil.copytree(tiny.adapter("shuffled"), folder)
    changed = AdapterRef("capitals-bot", tiny.revisions["shuffled"], folder)
    [answer] = backend.generate(
        [user_prompt("what is the capital of france?")], changed, max_new_tokens=4
    )
    assert "rev_" + changed.digest_hex in backend.loaded_adapters()
    assert answer.text != "paris"


def test_the_least_recently_used_adapters_are_unloaded_beyond_the_limit(
    backend: TransformersBackend, tiny: Kit
) -> None:
    for kind in ("good", "shuffled", "noop", "json", "badjson"):
        backend.generate([user_prompt("hi")], ref(tiny, kind), max_new_tokens=1)
    loaded = backend.loaded_adapters()
    assert len(loaded) == backend.max_loaded_adapters
    assert loaded[-1] == "rev_" + ref(tiny, "badjson").digest_hex


def test_a_folder_without_an_adapter_raises_and_the_backend_keeps_answering(
    backend: TransformersBackend, tiny: Kit, tmp_path: Path
) -> None:
    missing = AdapterRef("capitals-bot", "sha256:" + "0" * 64, tmp_path)
    with pytest.raises(FileNotFoundError):
        backend.generate([user_prompt("hi")], missing, max_new_tokens=1)
    [answer] = backend.generate(
        [user_prompt("what is the capital of chile?")], ref(tiny, "good"), max_new_tokens=4
    )
    assert answer.text == "santiago"


def test_a_prompt_longer_than_the_context_is_cut_from_the_left(
    backend: TransformersBackend, tiny: Kit
) -> None:
    long = user_prompt("the capital of " * 40 + "what is the capital of japan?")
    [answer] = backend.generate([long], ref(tiny, "good"), max_new_tokens=4)
    assert answer.prompt_tokens + 4 <= backend.context
    [likelihood] = backend.loglik([long], ["tokyo"], ref(tiny, "good"))
    assert likelihood.tokens == 2


def test_a_regressed_revision_fails_against_the_good_one_under_load(
    backend: TransformersBackend, tiny: Kit, capitals: Suite
) -> None:
    profile = load_profile(SUITES / "load", "staging")
    plan = Plan(
        suite=capitals, candidate=ref(tiny, "shuffled"), baseline=ref(tiny, "good"), load=profile
    )
    run = run_evaluation(backend, plan)
    assert run.load is not None and run.load.served and run.baseline is not None
    candidate = target_metrics(capitals, run.candidate, run.base, run.load.stats(0))
    baseline = target_metrics(capitals, run.baseline, run.base, run.load.stats(1))
    decision = decide_gate(candidate, baseline, capitals.gates)
    assert not decision.passed
    assert any(
        f.code == "metric_regressed" and f.message.startswith("accuracy 0.00 vs baseline 1.00")
        for f in decision.findings
    )
    assert {"latency_p95_ms", "tokens_per_s"} <= {m.name for m in decision.metrics}


def test_the_structured_suite_passes_json_answers_and_catches_broken_json(
    backend: TransformersBackend, tiny: Kit, structured: Suite
) -> None:
    verdicts = {}
    for kind in ("json", "badjson"):
        run = run_evaluation(backend, Plan(suite=structured, candidate=ref(tiny, kind)))
        metrics = target_metrics(structured, run.candidate, run.base, None)
        verdicts[kind] = decide_gate(metrics, None, structured.gates)
    assert verdicts["json"].passed, verdicts["json"].findings
    assert "schema_validity" in verdicts["badjson"].failed_metrics
    assert "structured_output_invalid" in {f.code for f in verdicts["badjson"].findings}


def multi_tenant(**changes: object) -> LoadProfile:
    path = SUITES / "load" / "multi-tenant.yaml"
    profile = parse_profile(path.read_bytes(), source=path.name)
    return dataclasses.replace(profile, **changes)  # type: ignore[arg-type]


def test_with_more_tenants_than_slots_adapters_swap_and_the_candidates_latency_moves(
    backend: TransformersBackend, tiny: Kit, capitals: Suite
) -> None:
    good, shuffled = ref(tiny, "good"), ref(tiny, "shuffled")
    plan = Plan(
        suite=capitals,
        candidate=good,
        baseline=shuffled,
        load=multi_tenant(requests=32, max_seconds=3),  # tenants: slots+2
        slots=3,
    )
    run = run_evaluation(backend, plan)
    pressure = run.pressure
    assert pressure is not None and pressure.counted
    assert (pressure.slots, pressure.tenants) == (3, 3)  # one free slot, two beyond
    assert pressure.swaps > 0 and pressure.loads >= pressure.swaps
    candidate, baseline = run_metrics(capitals, run)
    assert baseline is not None
    # The same arrivals in the same run: warm beside the baseline alone, then beside other
    # tenants' adapters in three slots (mixed-adapter batches, swaps): slower.
    for figures in (candidate, baseline):
        assert figures["latency_p50_ms_under_pressure"] > figures["latency_p50_ms"]
        assert figures["tokens_per_s_under_pressure"] < figures["tokens_per_s"]
    assert run.warmup is not None
    assert [(c.target, c.loads) for c in run.warmup.cold_loads] == [
        ("candidate", 1),
        ("baseline", 1),
    ]
    assert "cold_load_ms" in candidate and "cold_load_ms" in baseline
    section = performance_section(
        run, {"candidate": candidate, "baseline": baseline}, backend.describe()
    )
    assert section["pressure"]["swaps"] == pressure.swaps
    assert {(f["backend"], f["device"], f["dtype"]) for f in section["figures"]} == {
        ("transformers", "cpu", "float32")
    }
    assert {f["figure"] for f in section["figures"]} >= {
        "latency_p95_ms",
        "cold_load_ms",
        "latency_p95_ms_under_pressure",
    }
    # The stand-ins leave with the evaluation; the configured bound is back.
    kit_adapters = ("good", "shuffled", "noop", "json", "badjson")
    assert set(backend.loaded_adapters()) <= {
        "rev_" + ref(tiny, k).digest_hex for k in kit_adapters
    }
    assert backend.max_loaded_adapters == 4


def test_tenants_that_fit_the_slots_are_never_swapped_on_the_peft_model(
    backend: TransformersBackend, tiny: Kit, capitals: Suite
) -> None:
    plan = Plan(
        suite=capitals,
        candidate=ref(tiny, "good"),
        baseline=ref(tiny, "shuffled"),
        load=multi_tenant(tenants="slots", requests=12, max_seconds=2),
        slots=4,
    )
    pressure = run_evaluation(backend, plan).pressure
    assert pressure is not None and pressure.tenants == 2
    assert (pressure.loads, pressure.swaps) == (0, 0)


def test_with_every_adapter_evicted_the_base_answers_and_the_next_adapter_loads(
    backend: TransformersBackend, tiny: Kit
) -> None:
    for kind in ("good", "shuffled"):
        backend.generate([user_prompt("hi")], ref(tiny, kind), max_new_tokens=1)
    for name in backend.loaded_adapters():
        assert backend.evict(AdapterRef("any", "sha256:" + name.removeprefix("rev_"), tiny.base))
    assert backend.loaded_adapters() == []
    question = [user_prompt("what is the capital of peru?")]
    [base] = backend.generate(question, None, max_new_tokens=4)
    assert base.text != "lima"
    before = backend.adapter_counts()
    [answer] = backend.generate(question, ref(tiny, "good"), max_new_tokens=4)
    assert answer.text == "lima"
    assert backend.adapter_counts().since(before).of(ref(tiny, "good")) == 1
