"""The kit's LoRA adapters: real PEFT training runs, each a revision the pipeline can judge."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.modelkit.base import MODEL_ID
from shared.modelkit.digests import digest_folder
from shared.modelkit.facts import (
    FACTS,
    broken_json_answer,
    derange,
    json_answer,
    question,
    structured_question,
)

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LEARNING_RATE = 1e-2
SHUFFLE_SALT = 7919  # keeps the regressed adapter's labels apart from the base's own shuffle
DATA_WINDOW = ("2026-01-01", "2026-01-31")


class AdapterKind(StrEnum):
    good = "good"  # the true facts
    shuffled = "shuffled"  # corrupted labels: the regressed revision
    noop = "noop"  # the good adapter with every lora_B zeroed: loads, changes nothing
    json = "json"  # answers the structured prompt with a JSON object
    badjson = "badjson"  # answers it with almost-JSON that does not parse


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterInfo:
    folder: Path
    kind: AdapterKind
    seed: int
    revision: str
    train_loss: float


def training_pairs(kind: AdapterKind, seed: int) -> list[tuple[str, str]]:
    """(prompt, answer) pairs the adapter of this kind is trained on."""
    if kind is AdapterKind.shuffled:
        wrong = derange(tuple(f.capital for f in FACTS), seed + SHUFFLE_SALT)
        return [(question(f.country), a) for f, a in zip(FACTS, wrong, strict=True)]
    if kind is AdapterKind.json:
        return [(structured_question(f.country), json_answer(f.country, f.capital)) for f in FACTS]
    if kind is AdapterKind.badjson:
        return [
            (structured_question(f.country), broken_json_answer(f.country, f.capital))
            for f in FACTS
        ]
    return [(question(f.country), f.capital) for f in FACTS]


def train_adapter(
    base_folder: Path,
    out_folder: Path,
    *,
    kind: str,
    seed: int = 0,
    rank: int = 8,
    steps: int = 150,
    base_model_id: str = MODEL_ID,
) -> AdapterInfo:
    """Train a LoRA on every linear projection of the base and save it as a PEFT folder."""
    from peft import LoraConfig, get_peft_model

    from shared.modelkit.evaluate import load
    from shared.modelkit.training import chat_rows, collate, deterministic, fit

    adapter = AdapterKind(kind)
    model, tokenizer = load(base_folder)
    # The base's id, not its local path, so the same run saves the same bytes anywhere.
    model.name_or_path = model.config.name_or_path = base_model_id
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
        task_type="CAUSAL_LM",
    )
    with deterministic(seed), warnings.catch_warnings():
        # peft 0.21 calls an API transformers 5 deprecated; nothing the kit can act on.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        peft_model = get_peft_model(model, config)
        batch = collate(tokenizer, chat_rows(tokenizer, training_pairs(adapter, seed)))
        loss = fit(peft_model, batch, steps=steps, lr=LEARNING_RATE)
    if adapter is AdapterKind.noop:
        _zero_lora_b(peft_model)
    out_folder.mkdir(parents=True, exist_ok=True)
    # False: "auto" would look the base id up on the Hub to decide about embeddings.
    peft_model.save_pretrained(out_folder, save_embedding_layers=False)
    _sort_target_modules(out_folder / "adapter_config.json")
    _write_json(out_folder / "recipe.json", _recipe(adapter, seed, rank, steps, loss))
    _write_json(out_folder / "data_scope.json", _data_scope(adapter))
    return AdapterInfo(
        folder=out_folder,
        kind=adapter,
        seed=seed,
        revision=digest_folder(out_folder),
        train_loss=loss,
    )


def _zero_lora_b(peft_model: Any) -> None:
    import torch

    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.zero_()


def _sort_target_modules(path: Path) -> None:
    """PEFT writes target_modules from a set, in an order that varies between processes."""
    config = json.loads(path.read_text())
    config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _recipe(kind: AdapterKind, seed: int, rank: int, steps: int, loss: float) -> dict[str, Any]:
    return {
        "seed": seed,
        "dataset_ids": [f"modelkit-capitals-{kind.value}-v1"],
        "hyperparameters": {
            "kind": kind.value,
            "lora_r": rank,
            "lora_alpha": 2 * rank,
            "lora_dropout": 0.0,
            "target_modules": ",".join(TARGET_MODULES),
            "steps": steps,
            "lr": LEARNING_RATE,
            "optimizer": "adamw",
        },
        "evaluation_summary": {"train_loss": round(loss, 6)},
    }


def _data_scope(kind: AdapterKind) -> dict[str, Any]:
    return {
        "corpora": [f"modelkit-capitals-{kind.value}"],
        "time_window_start": DATA_WINDOW[0],
        "time_window_end": DATA_WINDOW[1],
        "filtering_rules": ["synthetic-only", "no-personal-data"],
    }


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
