"""The GPU backend on vLLM's offline engine: the environment's own LoRA slots, rank limit
and quantization, candidate and baseline as separate LoRA requests in one engine.

Written against vLLM's documented API (`LLM(model, enable_lora, max_loras, max_lora_rank,
quantization)`, `SamplingParams(temperature, max_tokens, prompt_logprobs)`,
`LoRARequest(lora_name, lora_int_id, lora_path)`, `LLM.generate(prompts, params,
lora_request=[...])`) and imported lazily: nothing here needs vllm until an engine is built.
Adapters are named `<adapter>@<revision digest>` with one integer id per digest for the
process's life, so vLLM never serves a changed adapter from a stale same-name cache.

Slots are the engine's own (`max_loras`, and vLLM's CPU cache of as many): vLLM swaps
adapters itself. The backend counts loads and evictions by comparing the engine's resident
LoRA ids (`LLMEngine.list_loras()`) before and after each call, and evicts with
`LLMEngine.remove_lora(id)` for a cold-load measurement; an adapter loaded and evicted
within one call is not seen, so under pressure the counts are a lower bound.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from services.gpu_evaluator.ports import (
    AdapterCounts,
    AdapterRef,
    BackendConfigError,
    Generation,
    LogLikelihood,
    Prompt,
    Target,
    per_prompt,
    render,
)
from shared.catalogue import EnvironmentSpec

# Quantization profile -> (vLLM `quantization`, `dtype`). AWQ/GPTQ read their settings from
# the (pre-quantized) base folder; the environment's profile says which one it serves.
QUANTIZATION: dict[str, tuple[str | None, str]] = {
    "bf16": (None, "bfloat16"),
    "fp16": (None, "float16"),
    "fp8": ("fp8", "auto"),
    "int4-awq": ("awq", "auto"),
    "awq": ("awq", "auto"),
    "int4-gptq": ("gptq", "auto"),
    "gptq": ("gptq", "auto"),
    "bitsandbytes": ("bitsandbytes", "auto"),
}


def engine_options(environment: EnvironmentSpec) -> dict[str, Any]:
    """The engine arguments that make evaluation load adapters as the environment does."""
    profile = environment.quantization_profile
    if profile not in QUANTIZATION:
        raise BackendConfigError(
            f"environment {environment.name} serves quantization {profile!r}, which the "
            f"vLLM backend does not map; known: {', '.join(sorted(QUANTIZATION))}"
        )
    quantization, dtype = QUANTIZATION[profile]
    return {
        "enable_lora": True,
        "max_loras": environment.max_loras,
        "max_lora_rank": environment.max_lora_rank,
        "quantization": quantization,
        "dtype": dtype,
    }


def build_vllm_backend(
    base_folder: Path,
    environment: EnvironmentSpec,
    *,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    enforce_eager: bool = False,
    seed: int = 0,
) -> VllmBackend:
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise BackendConfigError(
            f"EVALUATOR_BACKEND=vllm but vllm cannot be imported ({exc}); install the "
            "project's `gpu` extra on a machine with an NVIDIA GPU"
        ) from exc
    options = engine_options(environment)
    llm = LLM(
        model=str(base_folder),
        tokenizer=str(base_folder),
        seed=seed,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        enforce_eager=enforce_eager,
        **options,
    )
    return VllmBackend(
        llm,
        sampling_params=SamplingParams,
        lora_request=LoRARequest,
        details={
            **options,
            **engine_device(llm, options["dtype"]),
            "vllm": metadata.version("vllm"),
            "environment": environment.name,
        },
    )


def engine_device(llm: Any, asked_dtype: str) -> dict[str, str]:
    """Where the engine runs and the dtype it resolved (`auto` becomes the model's)."""
    config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
    dtype = getattr(config, "dtype", None)
    try:
        import torch

        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "unknown"
    except ImportError:  # vllm pins its own torch; without it there is no name to give
        name = "unknown"
    return {
        "device": "cuda",
        "device_name": name,
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else asked_dtype,
    }


class VllmBackend:
    name = "vllm"

    def __init__(
        self,
        llm: Any,
        *,
        sampling_params: Callable[..., Any],
        lora_request: Callable[[str, int, str], Any],
        details: dict[str, Any] | None = None,
    ) -> None:
        self._llm = llm
        self._sampling_params = sampling_params
        self._lora_request = lora_request
        self._details = details or {}
        self._tokenizer = llm.get_tokenizer()
        self._ids: dict[str, int] = {}  # digest-qualified name -> lora_int_id, never reused
        self._revisions: dict[int, str] = {}  # lora_int_id -> revision
        self._lock = threading.Lock()  # LLM.generate is not re-entrant
        engine = getattr(llm, "llm_engine", None)
        self._list_loras: Callable[[], set[int]] | None = getattr(engine, "list_loras", None)
        self._remove_lora: Callable[[int], bool] | None = getattr(engine, "remove_lora", None)
        self._loads: Counter[str] = Counter()
        self._evictions = 0
        self.slots = int(self._details.get("max_loras", 1))

    def describe(self) -> dict[str, Any]:
        counted = "engine list_loras" if self._list_loras else "unavailable"
        return {"name": self.name, **self._details, "adapter_counts": counted}

    def adapter_counts(self) -> AdapterCounts:
        with self._lock:
            return AdapterCounts(loads=dict(self._loads), evictions=self._evictions)

    def evict(self, target: AdapterRef) -> bool:
        lora_id = self._ids.get(f"{target.adapter}@{target.revision}")
        if lora_id is None or self._remove_lora is None:
            return False
        with self._lock:
            return bool(self._remove_lora(lora_id))

    @contextmanager
    def bounded_slots(self, slots: int) -> Iterator[int]:
        """The engine was built with the environment's `max_loras` (the provider keys
        engines by it): that bound is in force whatever is asked."""
        yield self.slots

    def _engine_generate(
        self, inputs: list[dict[str, list[int]]], params: Any, targets: Sequence[Target]
    ) -> tuple[Any, float]:
        """One `LLM.generate` under the lock and its wall time, with the engine's resident
        LoRA ids compared around it (outside the timed span)."""
        with self._lock:
            loras = [self.lora(t) for t in targets]
            before = set(self._list_loras()) if self._list_loras else set()
            started = time.perf_counter()
            outputs = self._llm.generate(inputs, params, lora_request=loras, use_tqdm=False)
            elapsed = time.perf_counter() - started
            if self._list_loras:
                after = set(self._list_loras())
                self._loads.update(self._revisions.get(i, str(i)) for i in after - before)
                self._evictions += len(before - after)
            return outputs, elapsed

    def close(self) -> None:
        """Drop the engine so a successor can take the GPU memory."""
        self._llm = None
        try:
            import torch

            torch.cuda.empty_cache()
        except ImportError:  # no torch: nothing cached to release
            return

    def lora(self, target: Target) -> Any:
        if target is None:
            return None
        name = f"{target.adapter}@{target.revision}"
        if name not in self._ids:
            self._ids[name] = len(self._ids) + 1  # ids start at 1; 0 means "no adapter"
            self._revisions[self._ids[name]] = target.revision
        return self._lora_request(name, self._ids[name], str(target.path))

    def _tokens(self, prompt: Prompt) -> list[int]:
        # Rendered by the template, tokenized without extra specials: the CPU backend's ids.
        ids = self._tokenizer(render(self._tokenizer, prompt), add_special_tokens=False)
        return list(ids["input_ids"])

    def generate(
        self,
        prompts: Sequence[Prompt],
        adapter: Target | Sequence[Target],
        *,
        max_new_tokens: int,
    ) -> list[Generation]:
        targets = per_prompt(adapter, len(prompts))
        inputs = [{"prompt_token_ids": self._tokens(p)} for p in prompts]
        params = self._sampling_params(temperature=0.0, max_tokens=max_new_tokens)
        outputs, elapsed = self._engine_generate(inputs, params, targets)
        return [
            Generation(
                text=out.outputs[0].text,
                prompt_tokens=len(out.prompt_token_ids),
                completion_tokens=len(out.outputs[0].token_ids),
                latency_s=elapsed,
            )
            for out in outputs
        ]

    def loglik(
        self,
        prompts: Sequence[Prompt],
        references: Sequence[str],
        adapter: Target | Sequence[Target],
    ) -> list[LogLikelihood]:
        targets = per_prompt(adapter, len(prompts))
        eos = self._tokenizer.eos_token_id
        rows: list[tuple[list[int], int]] = []
        for prompt, reference in zip(prompts, references, strict=True):
            head = self._tokens(prompt)
            tail = [*self._tokenizer(reference, add_special_tokens=False)["input_ids"], eos]
            rows.append(([*head, *tail], len(head)))
        # One generated token is the least vLLM computes; the prompt's own log-probs are the
        # point: entry p holds the log-prob of token p given every token before it.
        params = self._sampling_params(temperature=0.0, max_tokens=1, prompt_logprobs=1)
        outputs, _ = self._engine_generate(
            [{"prompt_token_ids": ids} for ids, _ in rows], params, targets
        )
        results = []
        for (ids, cut), out in zip(rows, outputs, strict=True):
            scores = [float(out.prompt_logprobs[p][ids[p]].logprob) for p in range(cut, len(ids))]
            results.append(LogLikelihood(mean=sum(scores) / len(scores), tokens=len(scores)))
        return results
