"""The GPU backend on vLLM's offline engine: the environment's own LoRA slots, rank limit
and quantization, candidate and baseline as separate LoRA requests in one engine.

Written against vLLM's documented API (`LLM(model, enable_lora, max_loras, max_lora_rank,
quantization)`, `SamplingParams(temperature, max_tokens, prompt_logprobs)`,
`LoRARequest(lora_name, lora_int_id, lora_path)`, `LLM.generate(prompts, params,
lora_request=[...])`) and imported lazily: nothing here needs vllm until an engine is built.
Adapters are named `<adapter>@<revision digest>` with one integer id per digest for the
process's life, so vLLM never serves a changed adapter from a stale same-name cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from services.gpu_evaluator.ports import (
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
        details={**options, "vllm": metadata.version("vllm"), "environment": environment.name},
    )


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
        self._lock = threading.Lock()  # LLM.generate is not re-entrant

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self._details}

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
        with self._lock:
            started = time.perf_counter()
            outputs = self._llm.generate(
                inputs, params, lora_request=[self.lora(t) for t in targets], use_tqdm=False
            )
            elapsed = time.perf_counter() - started
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
        with self._lock:
            outputs = self._llm.generate(
                [{"prompt_token_ids": ids} for ids, _ in rows],
                params,
                lora_request=[self.lora(t) for t in targets],
                use_tqdm=False,
            )
        results = []
        for (ids, cut), out in zip(rows, outputs, strict=True):
            scores = [float(out.prompt_logprobs[p][ids[p]].logprob) for p in range(cut, len(ids))]
            results.append(LogLikelihood(mean=sum(scores) / len(scores), tokens=len(scores)))
        return results
