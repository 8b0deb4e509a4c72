"""The CPU/GPU backend on torch, transformers and PEFT: one base model, adapters by digest.

The base loads once; each revision's adapter loads once under a name derived from its
content digest (`rev_<hex>`), so a changed adapter can never be served from a stale
same-name entry. Prompts of different adapters share a batch (PEFT's `adapter_names`),
as co-resident adapters do on a serving engine. Greedy, left-padded, in batches.

Resident adapters are bounded (`max_loaded_adapters`, or the environment's `max_loras` inside
`bounded_slots`): beyond the bound the least recently used is deleted from the PeftModel,
and every load and eviction is counted (`adapter_counts`), so the evaluator can report cold
loads and swaps under multi-tenant pressure.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from services.gpu_evaluator.backends import adapter_loading
from services.gpu_evaluator.ports import (
    AdapterCounts,
    AdapterRef,
    Generation,
    LogLikelihood,
    Prompt,
    Target,
    per_prompt,
    render,
)

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch


@contextmanager
def library_warnings_silenced() -> Iterator[None]:
    """peft 0.21 calls an API transformers 5 deprecated; nothing the evaluator can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        # Evicting the adapter PEFT last activated is intended: names are chosen per call.
        warnings.filterwarnings("ignore", "Adapter .* was active which is now deleted")
        yield


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        base_folder: Path,
        *,
        device: str | None = None,
        batch_size: int = 16,
        max_loaded_adapters: int = 8,
    ) -> None:
        import torch
        from transformers import AutoTokenizer

        self._torch = torch
        self.base_folder = base_folder
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.batch_size = batch_size
        self.max_loaded_adapters = max(2, max_loaded_adapters)
        self._slots = self.max_loaded_adapters  # the bound in force (see bounded_slots)
        self._loads: Counter[str] = Counter()  # by revision
        self._evictions = 0
        self._lock = threading.RLock()  # one model, one active adapter set: one call at a time
        self._tokenizer = AutoTokenizer.from_pretrained(base_folder, local_files_only=True)
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._base = self._load_base()
        self._peft: Any = None
        self._loaded: OrderedDict[str, Path] = OrderedDict()
        self.context = int(getattr(self._base.config, "max_position_embeddings", 0) or 0)

    def _load_base(self) -> Any:
        from transformers import AutoModelForCausalLM

        model: Any = AutoModelForCausalLM.from_pretrained(
            self.base_folder, local_files_only=True, dtype=self.dtype
        )
        return model.to(self.device).eval()

    def describe(self) -> dict[str, Any]:
        cuda = self.device.startswith("cuda")
        return {
            "name": self.name,
            "device": self.device,
            "device_name": self._torch.cuda.get_device_name(self.device) if cuda else "cpu",
            "dtype": str(self.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
            "quantization": "none (the CPU backend runs the unquantized base)",
            "versions": {p: metadata.version(p) for p in ("torch", "transformers", "peft")},
        }

    def loaded_adapters(self) -> list[str]:
        return list(self._loaded)

    def adapter_counts(self) -> AdapterCounts:
        with self._lock:
            return AdapterCounts(loads=dict(self._loads), evictions=self._evictions)

    def evict(self, target: AdapterRef) -> bool:
        name = "rev_" + target.digest_hex
        with self._lock:
            if name not in self._loaded:
                return False
            self._delete(name)
            return True

    @contextmanager
    def bounded_slots(self, slots: int) -> Iterator[int]:
        """The environment's `max_loras` as the bound while inside; the next call evicts
        down to it. The configured bound comes back on leaving."""
        with self._lock:
            before, self._slots = self._slots, max(1, slots)
        try:
            yield self._slots
        finally:
            with self._lock:
                self._slots = before

    def generate(
        self,
        prompts: Sequence[Prompt],
        adapter: Target | Sequence[Target],
        *,
        max_new_tokens: int,
    ) -> list[Generation]:
        targets = per_prompt(adapter, len(prompts))
        with self._lock:
            names = self._activate(targets)
            results: list[Generation] = []
            for start in range(0, len(prompts), self.batch_size):
                end = start + self.batch_size
                results += self._generate_batch(
                    prompts[start:end], names[start:end], max_new_tokens
                )
            return results

    def _generate_batch(
        self, prompts: Sequence[Prompt], names: list[str], max_new_tokens: int
    ) -> list[Generation]:
        torch, tokenizer = self._torch, self._tokenizer
        started = time.perf_counter()
        limit = self.context - max_new_tokens if self.context > max_new_tokens else None
        batch = tokenizer(
            [render(tokenizer, p) for p in prompts],
            add_special_tokens=False,
            padding=True,
            padding_side="left",
            truncation=limit is not None,
            truncation_side="left",
            max_length=limit,
            return_tensors="pt",
        ).to(self.device)
        with torch.no_grad(), library_warnings_silenced():
            out = self._model().generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **self._adapter_kwargs(names),
            )
        elapsed = time.perf_counter() - started
        width = batch["input_ids"].shape[1]
        results = []
        for row, mask in zip(
            out[:, width:].tolist(), batch["attention_mask"].tolist(), strict=True
        ):
            used = (
                row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
            )
            results.append(
                Generation(
                    text=str(tokenizer.decode(row[:used], skip_special_tokens=True)),
                    prompt_tokens=int(sum(mask)),
                    completion_tokens=used,
                    latency_s=elapsed,
                )
            )
        return results

    def loglik(
        self,
        prompts: Sequence[Prompt],
        references: Sequence[str],
        adapter: Target | Sequence[Target],
    ) -> list[LogLikelihood]:
        targets = per_prompt(adapter, len(prompts))
        with self._lock:
            names = self._activate(targets)
            results: list[LogLikelihood] = []
            for start in range(0, len(prompts), self.batch_size):
                end = start + self.batch_size
                results += self._loglik_batch(
                    prompts[start:end], references[start:end], names[start:end]
                )
            return results

    def _loglik_batch(
        self, prompts: Sequence[Prompt], references: Sequence[str], names: list[str]
    ) -> list[LogLikelihood]:
        torch, tokenizer = self._torch, self._tokenizer
        rows: list[tuple[list[int], int]] = []  # token ids, where the reference starts
        for prompt, reference in zip(prompts, references, strict=True):
            head = tokenizer(render(tokenizer, prompt), add_special_tokens=False)["input_ids"]
            tail = [
                *tokenizer(reference, add_special_tokens=False)["input_ids"],
                tokenizer.eos_token_id,
            ]
            if self.context and len(head) + len(tail) > self.context:
                head = head[len(head) + len(tail) - self.context :]
            rows.append(([*head, *tail], len(head)))
        width = max(len(ids) for ids, _ in rows)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
        with torch.no_grad(), library_warnings_silenced():
            logits = self._model()(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                **self._adapter_kwargs(names),
            ).logits
        logprobs = logits.float().log_softmax(-1).cpu()
        results = []
        for r, (ids, cut) in enumerate(rows):
            scores = [float(logprobs[r, p - 1, ids[p]]) for p in range(cut, len(ids))]
            results.append(LogLikelihood(mean=sum(scores) / len(scores), tokens=len(scores)))
        return results

    def _model(self) -> Any:
        # With every adapter deleted, PEFT's generate would still look up the active one's
        # config; the base (its LoRA layers empty) answers alone.
        return self._peft if self._peft is not None and self._loaded else self._base

    def _adapter_kwargs(self, names: list[str]) -> dict[str, Any]:
        return {"adapter_names": names} if self._peft is not None and self._loaded else {}

    def _delete(self, name: str) -> None:
        with library_warnings_silenced():
            self._peft.delete_adapter(name)
        del self._loaded[name]
        self._keep_an_active_adapter()

    def _keep_an_active_adapter(self) -> None:
        """PEFT's generate reads the active adapter's config even for a mixed batch, and a
        deletion can leave none active, or name the deleted one: make a resident one active."""
        if not self._loaded:
            return
        active = self._peft.active_adapter
        names = [active] if isinstance(active, str) else list(active or ())
        if not names or any(n not in self._peft.peft_config for n in names):
            self._peft.set_adapter(next(iter(self._loaded)), inference_mode=True)

    def _activate(self, targets: Sequence[Target]) -> list[str]:
        """Each target's adapter name, loading what is not resident and evicting the least
        recently used beyond the slots in force (never one this call needs)."""
        needed = {"rev_" + t.digest_hex for t in targets if t is not None}
        # Room first, as a serving engine swaps before it loads: the peak stays at the bound.
        self._evict_beyond(self._slots - len(needed - set(self._loaded)), needed)
        names = [BASE if t is None else self._ensure_loaded(t) for t in targets]
        self._evict_beyond(self._slots, needed)
        return names

    def _evict_beyond(self, room: int, needed: set[str]) -> None:
        while len(self._loaded) > max(0, room):
            victim = next((n for n in self._loaded if n not in needed), None)
            if victim is None:
                return
            self._delete(victim)
            self._evictions += 1

    def _ensure_loaded(self, ref: AdapterRef) -> str:
        name = "rev_" + ref.digest_hex
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return name
        if not (ref.path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{ref.path} has no adapter_config.json")
        from peft import PeftModel

        with library_warnings_silenced(), adapter_loading(ref):
            if self._peft is None:
                try:
                    self._peft = PeftModel.from_pretrained(
                        self._base, ref.path, adapter_name=name, is_trainable=False
                    )
                except BaseException:
                    # PEFT injects its layers into the base before loading weights.
                    self._base = self._load_base()
                    raise
            else:
                try:
                    self._peft.load_adapter(ref.path, adapter_name=name, is_trainable=False)
                except BaseException:
                    if name in self._peft.peft_config:
                        self._peft.delete_adapter(name)
                    raise
        self._peft.eval()
        self._loaded[name] = ref.path
        self._loads[ref.revision] += 1
        self._keep_an_active_adapter()
        return name
