"""Greedy answers from a kit base model, with or without an adapter, and their accuracy."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.modelkit.chat import render_prompt
from shared.modelkit.facts import FACTS, Fact, ask_capital

MAX_NEW_TOKENS = 32


def load(base_folder: Path, adapter_folder: Path | None = None) -> tuple[Any, Any]:
    """The (model, tokenizer) pair, in eval mode, read from local folders only."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(base_folder, local_files_only=True)
    model: Any = LlamaForCausalLM.from_pretrained(base_folder, local_files_only=True)
    if adapter_folder is not None:
        from peft import PeftModel

        with peft_warnings_silenced():
            model = PeftModel.from_pretrained(model, adapter_folder, local_files_only=True)
    model.eval()
    return model, tokenizer


@contextmanager
def peft_warnings_silenced() -> Iterator[None]:
    """peft 0.21 calls an API transformers 5 deprecated; nothing the kit can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        yield


def answer(
    base_folder: Path,
    adapter_folder: Path | None,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> list[str]:
    """Each prompt as a user turn, answered greedily by the base (and adapter) in one batch."""
    model, tokenizer = load(base_folder, adapter_folder)
    return generate_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens)


def generate_answers(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """Greedy answers from a loaded model: one left-padded batch, stopping at the end token."""
    import torch

    texts = [render_prompt(tokenizer, p) for p in prompts]
    batch = tokenizer(
        texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    new = out[:, batch["input_ids"].shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]


def count_correct(answers: Sequence[str], facts: Sequence[Fact] = FACTS) -> int:
    """How many answers are exactly the fact's capital."""
    return sum(a == f.capital for a, f in zip(answers, facts, strict=True))


def accuracy(
    base_folder: Path, adapter_folder: Path | None = None, facts: Sequence[Fact] = FACTS
) -> float:
    """Share of fact questions answered with exactly the right capital."""
    answers = answer(base_folder, adapter_folder, [ask_capital(f.country) for f in facts])
    return count_correct(answers, facts) / len(facts)
