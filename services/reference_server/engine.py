"""One base model with any number of LoRA revisions loaded beside it (PEFT), on the CPU.

Generation runs one request at a time under a lock: PEFT switches the active adapter on
the shared model, which is not safe to do from two threads at once.

Like vLLM's LoRA slots, at most `max_resident` adapters sit in the PEFT model at once (a
load into PEFT walks every module of every resident adapter, so it slows down with their
number); the others stay registered and are swapped back in, least recently used out,
when a request names them. A load still loads the weights once, so a broken adapter is
refused at load time.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.artifacts import folder_revision
from shared.modelkit.evaluate import load, peft_warnings_silenced


class LoadRefused(Exception):
    """The adapter cannot be loaded (missing path, not a PEFT folder, name taken)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Sampling:
    """How tokens are chosen: greedy without a temperature (or at 0), else drawn."""

    max_new_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None

    def options(self) -> dict[str, Any]:
        if not self.temperature:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": 1.0 if self.top_p is None else self.top_p,
            "top_k": 0,  # off, as in vLLM: only temperature and top_p shape the draw
        }


class _Emitter:
    """A `generate` streamer handing on each new token id (its first call is the prompt)."""

    def __init__(self, emit: Callable[[int], None]) -> None:
        self._emit = emit
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self._emit(int(token))

    def end(self) -> None:
        return None


class Engine:
    def __init__(self, base_folder: Path, *, threads: int = 1, max_resident: int = 32) -> None:
        import torch

        torch.set_num_threads(threads)
        self.base_folder = base_folder
        self.max_resident = max(1, max_resident)
        self._model, self.tokenizer = load(base_folder)
        self._peft: Any = None
        self._slots: OrderedDict[str, str] = OrderedDict()  # resident: name -> PEFT adapter
        self._paths: dict[str, str] = {}  # every loaded lora name -> its folder
        self._next = 0
        self._lock = threading.Lock()
        config = json.loads((base_folder / "config.json").read_text())
        length = config.get("max_position_embeddings")
        self.max_model_len: int | None = length if isinstance(length, int) else None

    def loaded(self) -> Mapping[str, str]:
        return dict(self._paths)

    def load(self, name: str, path: str) -> None:
        folder = Path(path)
        if not (folder / "adapter_config.json").is_file():
            raise LoadRefused(f"no LoRA adapter at {path!r} (adapter_config.json missing)", 404)
        with self._lock:
            if name in self._paths:
                raise LoadRefused(f"The lora adapter '{name}' has already been loaded.", 400)
            self._make_resident(name, path)
            self._paths[name] = path

    def _make_resident(self, name: str, path: str) -> str:
        """The PEFT adapter holding `name`, loaded first (evicting the least recently used
        beyond `max_resident`) if it is not resident. Call with the lock held."""
        if name in self._slots:
            self._slots.move_to_end(name)
            return self._slots[name]
        slot = f"lora{self._next}"  # PEFT names are module keys: no dots, no '@'
        self._next += 1
        _verify_revision_folder(Path(path))
        with peft_warnings_silenced():
            if self._peft is None:
                from peft import PeftModel

                self._peft = PeftModel.from_pretrained(self._model, path, adapter_name=slot)
            else:
                self._peft.load_adapter(path, adapter_name=slot)
            self._peft.eval()
            self._slots[name] = slot
            # Evicting the adapter PEFT has active is expected here: generate sets its own.
            warnings.filterwarnings("ignore", "Adapter .* was active which is now deleted")
            while len(self._slots) > self.max_resident:
                _, evicted = self._slots.popitem(last=False)
                self._peft.delete_adapter(evicted)
        return slot

    def unload(self, name: str) -> bool:
        with self._lock:
            if self._paths.pop(name, None) is None:
                return False
            slot = self._slots.pop(name, None)
            if slot is not None:
                self._peft.delete_adapter(slot)
            return True

    def generate(self, lora: str | None, texts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        """Greedy continuations of raw `texts` by the base, or with the named LoRA."""
        with self._lock:
            batch = self.tokenizer(
                list(texts),
                add_special_tokens=False,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            )
            out = self._generate(lora, batch, Sampling(max_new_tokens=max_new_tokens))
            new = out[:, batch["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            return [text.strip() for text in decoded]

    def stream(
        self,
        lora: str | None,
        prompt: str,
        sampling: Sampling,
        emit: Callable[[int], None],
        halt: threading.Event,
    ) -> None:
        """One continuation of `prompt`, each token id handed to `emit` as soon as the model
        produces it; setting `halt` ends generation after the token being made."""
        import torch

        def halted(input_ids: Any, scores: Any, **_: Any) -> Any:
            return torch.full((input_ids.shape[0],), halt.is_set(), dtype=torch.bool)

        with self._lock:
            batch = self.tokenizer([prompt], add_special_tokens=False, return_tensors="pt")
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)  # under the lock: no other request draws
            self._generate(lora, batch, sampling, streamer=_Emitter(emit), halted=halted)

    def _generate(
        self, lora: str | None, batch: Any, sampling: Sampling, *, halted: Any = None, **extra: Any
    ) -> Any:
        """The model's output for `batch`, by the base or the LoRA. Call with the lock held."""
        import torch
        from transformers import StoppingCriteriaList

        options = {
            **sampling.options(),
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
            **extra,
        }
        if halted is not None:
            options["stopping_criteria"] = StoppingCriteriaList([halted])
        with torch.no_grad():
            if lora is not None:
                if lora not in self._paths:
                    raise KeyError(lora)
                self._peft.set_adapter(self._make_resident(lora, self._paths[lora]))
                return self._peft.generate(**batch, **options)
            if self._peft is not None:
                with self._peft.disable_adapter():
                    return self._peft.generate(**batch, **options)
            return self._model.generate(**batch, **options)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    @property
    def eos_token_id(self) -> int | None:
        token = self.tokenizer.eos_token_id
        return int(token) if token is not None else None

    def render_chat(self, messages: Sequence[Mapping[str, str]]) -> str:
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
        return str(text)


_HEX = frozenset("0123456789abcdef")


def _verify_revision_folder(folder: Path) -> None:
    """A folder named by a revision digest (the store's `revisions/<adapter>/<hex>`) must
    hold exactly the bytes that digest names; checked at every load, before PEFT reads it."""
    name = folder.name
    if len(name) != 64 or not set(name) <= _HEX:
        return  # not a store folder (a hand-made one in development): nothing to hold it to
    found = folder_revision(folder)
    if found != f"sha256:{name}":
        raise LoadRefused(
            f"the files at {str(folder)!r} make revision {found}, not sha256:{name}: "
            "they changed after the revision was recorded; refusing to load them",
            400,
        )
