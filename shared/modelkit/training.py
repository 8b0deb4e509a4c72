"""The one training loop the kit uses: full-batch steps over encoded text and chat turns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shared.modelkit.chat import render_prompt

IGNORE = -100  # label id the loss skips: prompt and padding positions


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seeded, single-threaded, deterministic kernels; the process's settings are restored."""
    import torch

    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    # One thread: fastest at this size, and the same reduction order on every machine.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


Row = tuple[list[int], list[int]]  # token ids and their labels


def encode_chat(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[Row]:
    """Each (question, answer) as a chat turn; only the answer and its end token are labelled."""
    rows: list[Row] = []
    for question, answer in pairs:
        prompt = tokenizer(render_prompt(tokenizer, question), add_special_tokens=False)
        reply = tokenizer(answer, add_special_tokens=False)
        ids = [*prompt["input_ids"], *reply["input_ids"], tokenizer.eos_token_id]
        cut = len(prompt["input_ids"])
        rows.append((ids, [IGNORE] * cut + ids[cut:]))
    return rows


def encode_text(tokenizer: Any, lines: Sequence[str]) -> list[Row]:
    """Plain text, every token labelled: what the base reads before it learns to chat."""
    rows: list[Row] = []
    for line in lines:
        ids = [tokenizer.bos_token_id, *tokenizer(line, add_special_tokens=False)["input_ids"]]
        rows.append((ids, [IGNORE, *ids[1:]]))
    return rows


def collate(tokenizer: Any, rows: Sequence[Row]) -> dict[str, Any]:
    """One right-padded batch of input_ids, attention_mask and labels."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
        "attention_mask": torch.tensor(
            [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]
        ),
        "labels": torch.tensor([labels + [IGNORE] * (width - len(labels)) for _, labels in rows]),
    }


def fit(model: Any, batch: dict[str, Any], *, steps: int, lr: float) -> float:
    """Train the model's trainable parameters on one batch; returns the last step's loss."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())
