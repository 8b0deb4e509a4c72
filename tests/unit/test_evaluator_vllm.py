"""The vLLM backend's contract with the engine, checked against a fake of the remote GPU
fleet (the one thing outside our bounded context): what it asks of vLLM, and how it reads
the answers. The real engine runs only in `infra/gpu_check.py`, on a GPU."""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from services.gpu_evaluator.ports import (
    AdapterRef,
    AdapterSlots,
    BackendConfigError,
    render,
    user_prompt,
)
from services.gpu_evaluator.vllm_backend import (
    VllmBackend,
    build_vllm_backend,
    engine_device,
    engine_options,
)
from shared.catalogue import EnvironmentSpec

ENV = EnvironmentSpec(
    name="production",
    base_model_id="tiny",
    base_model_revision="r1",
    tokenizer_hash="t",
    chat_template_hash="c",
    max_loras=3,
    max_lora_rank=16,
)
CANDIDATE = AdapterRef("bot", "sha256:" + "c" * 64, Path("/store/bot/c"))
BASELINE = AdapterRef("bot", "sha256:" + "b" * 64, Path("/store/bot/b"))


@dataclass
class Lora:  # vLLM's LoRARequest(lora_name, lora_int_id, lora_path)
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class Logprob:
    logprob: float


@dataclass
class Completion:
    text: str
    token_ids: list[int]


@dataclass
class Output:
    prompt_token_ids: list[int]
    outputs: list[Completion]
    prompt_logprobs: list[dict[int, Logprob] | None] | None


class Tokenizer:
    """Words to ids, with the kit's chat template shape."""

    eos_token_id = 2

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return " ".join(f"<{m['role']}> {m['content']}" for m in messages) + " <assistant>"

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        assert add_special_tokens is False  # the template already holds what it needs
        return {"input_ids": [self.vocab.setdefault(w, 10 + len(self.vocab)) for w in text.split()]}


class FakeFleet:
    """Answers like `vllm.LLM.generate`: with the adapter's name, and -0.25 per prompt token."""

    def __init__(self) -> None:
        self.tokenizer = Tokenizer()
        self.calls: list[tuple[list[dict[str, list[int]]], dict[str, Any], list[Lora | None]]] = []

    def get_tokenizer(self) -> Tokenizer:
        return self.tokenizer

    def generate(
        self,
        prompts: list[dict[str, list[int]]],
        params: dict[str, Any],
        *,
        lora_request: Sequence[Lora | None],
        use_tqdm: bool,
    ) -> list[Output]:
        assert use_tqdm is False and len(lora_request) == len(prompts)
        self.calls.append((prompts, params, list(lora_request)))
        return [
            Output(
                prompt_token_ids=p["prompt_token_ids"],
                outputs=[Completion(text=lora.lora_name if lora else "base", token_ids=[5, 2])],
                prompt_logprobs=[None]
                + [{t: Logprob(-0.25), 99: Logprob(-9.0)} for t in p["prompt_token_ids"][1:]]
                if params.get("prompt_logprobs") is not None
                else None,
            )
            for p, lora in zip(prompts, lora_request, strict=True)
        ]


def sampling_params(**kwargs: Any) -> dict[str, Any]:
    return kwargs


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet()


@pytest.fixture
def backend(fleet: FakeFleet) -> VllmBackend:
    return VllmBackend(fleet, sampling_params=sampling_params, lora_request=Lora)


def test_the_engine_takes_the_environments_lora_slots_rank_and_quantization() -> None:
    assert engine_options(ENV) == {
        "enable_lora": True,
        "max_loras": 3,
        "max_lora_rank": 16,
        "quantization": None,
        "dtype": "bfloat16",
    }
    awq = engine_options(replace(ENV, quantization_profile="int4-awq"))
    assert (awq["quantization"], awq["dtype"]) == ("awq", "auto")


def test_an_unmapped_quantization_profile_is_a_setup_error() -> None:
    with pytest.raises(BackendConfigError, match="'int3-magic'"):
        engine_options(replace(ENV, quantization_profile="int3-magic"))


def test_candidate_and_baseline_go_to_one_engine_call_as_separate_digest_named_loras(
    backend: VllmBackend, fleet: FakeFleet
) -> None:
    prompts = [user_prompt("what is the capital of peru?")] * 3
    answers = backend.generate(prompts, [CANDIDATE, BASELINE, None], max_new_tokens=7)
    [(sent, params, loras)] = fleet.calls
    assert params == {"temperature": 0.0, "max_tokens": 7}
    assert loras == [
        Lora(f"bot@{CANDIDATE.revision}", 1, "/store/bot/c"),
        Lora(f"bot@{BASELINE.revision}", 2, "/store/bot/b"),
        None,
    ]
    assert [a.text for a in answers] == [
        f"bot@{CANDIDATE.revision}",
        f"bot@{BASELINE.revision}",
        "base",
    ]
    assert answers[0].completion_tokens == 2 and answers[0].prompt_tokens == len(
        sent[0]["prompt_token_ids"]
    )


def test_prompts_are_sent_as_the_templates_token_ids_without_added_specials(
    backend: VllmBackend, fleet: FakeFleet
) -> None:
    prompt = user_prompt("hello there")
    backend.generate([prompt], None, max_new_tokens=1)
    expected = fleet.tokenizer(render(fleet.tokenizer, prompt), add_special_tokens=False)
    assert fleet.calls[0][0] == [{"prompt_token_ids": expected["input_ids"]}]


def test_an_adapter_keeps_its_lora_id_and_a_new_revision_gets_a_new_one(
    backend: VllmBackend,
) -> None:
    first = backend.lora(CANDIDATE)
    assert backend.lora(CANDIDATE) == first
    newer = backend.lora(replace(CANDIDATE, revision="sha256:" + "d" * 64))
    assert newer.lora_int_id != first.lora_int_id and newer.lora_name != first.lora_name


def test_the_reference_log_likelihood_is_read_from_the_prompt_logprobs(
    backend: VllmBackend, fleet: FakeFleet
) -> None:
    [likelihood] = backend.loglik([user_prompt("capital of peru?")], ["lima"], CANDIDATE)
    [(sent, params, _)] = fleet.calls
    assert params == {"temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 1}
    assert sent[0]["prompt_token_ids"][-1] == Tokenizer.eos_token_id
    assert likelihood.tokens == 2 and likelihood.mean == pytest.approx(-0.25)


def test_without_vllm_installed_the_backend_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # importing it now raises ImportError
    with pytest.raises(BackendConfigError, match="`gpu` extra"):
        build_vllm_backend(tmp_path, ENV)


class Engine:
    """`LLM.llm_engine` as far as the backend reads it: the LoRA ids resident in vLLM's
    cache (`max_cpu_loras`, by default `max_loras`, least recently used evicted first),
    `remove_lora(id)`, and the model config's resolved dtype."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.resident: OrderedDict[int, None] = OrderedDict()
        self.removed: list[int] = []
        self.model_config = type("ModelConfig", (), {"dtype": "torch.bfloat16"})()

    def use(self, loras: Sequence[Lora | None]) -> None:
        for lora in loras:
            if lora is None:
                continue
            self.resident.pop(lora.lora_int_id, None)
            self.resident[lora.lora_int_id] = None
            while len(self.resident) > self.slots:
                self.resident.popitem(last=False)

    def list_loras(self) -> set[int]:
        return set(self.resident)

    def remove_lora(self, lora_id: int) -> bool:
        self.removed.append(lora_id)
        if lora_id not in self.resident:
            return False
        del self.resident[lora_id]
        return True


class FleetWithSlots(FakeFleet):
    def __init__(self, slots: int) -> None:
        super().__init__()
        self.llm_engine = Engine(slots)

    def generate(
        self,
        prompts: list[dict[str, list[int]]],
        params: dict[str, Any],
        *,
        lora_request: Sequence[Lora | None],
        use_tqdm: bool,
    ) -> list[Output]:
        self.llm_engine.use(lora_request)
        return super().generate(prompts, params, lora_request=lora_request, use_tqdm=use_tqdm)


def slotted(slots: int) -> tuple[VllmBackend, FleetWithSlots]:
    fleet = FleetWithSlots(slots)
    backend = VllmBackend(
        fleet, sampling_params=sampling_params, lora_request=Lora, details={"max_loras": slots}
    )
    return backend, fleet


TENANT = AdapterRef("other", "sha256:" + "e" * 64, Path("/store/other/e"))


def test_loads_and_swaps_are_read_from_the_engines_resident_loras() -> None:
    backend, _ = slotted(2)
    assert isinstance(backend, AdapterSlots)
    prompt = [user_prompt("hi")] * 2
    backend.generate(prompt, [CANDIDATE, BASELINE], max_new_tokens=1)
    counts = backend.adapter_counts()
    assert (counts.total_loads, counts.evictions) == (2, 0)
    backend.generate(prompt[:1], TENANT, max_new_tokens=1)  # one more than the slots
    backend.generate(prompt[:1], CANDIDATE, max_new_tokens=1)  # evicted: loaded again
    counts = backend.adapter_counts()
    assert counts.evictions == 2
    assert (counts.of(CANDIDATE), counts.of(BASELINE), counts.of(TENANT)) == (2, 1, 1)


def test_a_cold_load_removes_the_lora_from_the_engine_by_its_id() -> None:
    backend, fleet = slotted(2)
    assert backend.evict(CANDIDATE) is False  # never sent: no id to remove
    backend.generate([user_prompt("hi")], CANDIDATE, max_new_tokens=1)
    assert backend.evict(CANDIDATE) is True
    assert fleet.llm_engine.removed == [1] and fleet.llm_engine.list_loras() == set()
    before = backend.adapter_counts()
    backend.generate([user_prompt("hi")], CANDIDATE, max_new_tokens=1)
    assert backend.adapter_counts().since(before).of(CANDIDATE) == 1  # cold again


def test_the_engines_slots_are_its_own_max_loras_whatever_is_asked() -> None:
    backend, _ = slotted(3)
    with backend.bounded_slots(8) as slots:
        assert slots == 3


def test_an_engine_without_a_lora_listing_counts_nothing_and_says_so(backend: VllmBackend) -> None:
    backend.generate([user_prompt("hi")], CANDIDATE, max_new_tokens=1)
    assert backend.adapter_counts().total_loads == 0
    assert backend.describe()["adapter_counts"] == "unavailable"


def test_the_engine_reports_its_device_and_the_dtype_it_resolved() -> None:
    described = engine_device(FleetWithSlots(2), "auto")
    assert (described["device"], described["dtype"]) == ("cuda", "bfloat16")
    assert engine_device(FakeFleet(), "float16")["dtype"] == "float16"  # nothing resolved
