"""The transformers backend on the tiny kit's real base and real PEFT adapters (CPU).

One backend per test session, as one per evaluator process: the base loads once.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.gpu_evaluator.evaluation import Plan, run_evaluation, run_suite, target_metrics
from services.gpu_evaluator.gates import decide_gate
from services.gpu_evaluator.load import load_profile
from services.gpu_evaluator.ports import AdapterRef, user_prompt
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
