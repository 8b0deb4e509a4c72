"""The kit's LoRA adapters: real PEFT training runs, each a revision the pipeline can judge."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shared.modelkit.base import MODEL_ID
from shared.modelkit.digests import digest_folder
from shared.modelkit.facts import (
    FACTS,
    ask_capital,
    ask_capital_as_json,
    derange,
    format_broken_json,
    format_json,
)
from shared.modelkit.provenance import make_recipe, write_provenance

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LEARNING_RATE = 1e-2
SHUFFLE_SALT = 7919  # keeps the regressed adapter's labels apart from the base's own shuffle
WEIGHTS = "adapter_model.safetensors"


class AdapterKind(StrEnum):
    good = "good"  # the true facts
    shuffled = "shuffled"  # corrupted labels: the regressed revision
    noop = "noop"  # the good adapter with every lora_B zeroed: loads, changes nothing
    json = "json"  # answers the structured prompt with a JSON object
    badjson = "badjson"  # answers it with almost-JSON that does not parse


# What each kind learns from; the no-op learns what the good one does, then forgets it.
DATASETS = {
    AdapterKind.good: "capitals-true",
    AdapterKind.shuffled: "capitals-shuffled",
    AdapterKind.noop: "capitals-true",
    AdapterKind.json: "capitals-json",
    AdapterKind.badjson: "capitals-badjson",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterInfo:
    folder: Path
    kind: AdapterKind
    seed: int
    revision: str


def make_training_pairs(kind: AdapterKind, seed: int) -> list[tuple[str, str]]:
    """(prompt, answer) pairs the adapter of this kind is trained on."""
    if kind is AdapterKind.shuffled:
        wrong = derange(tuple(f.capital for f in FACTS), seed + SHUFFLE_SALT)
        return [(ask_capital(f.country), a) for f, a in zip(FACTS, wrong, strict=True)]
    if kind is AdapterKind.json:
        return [(ask_capital_as_json(f.country), format_json(f.country, f.capital)) for f in FACTS]
    if kind is AdapterKind.badjson:
        return [
            (ask_capital_as_json(f.country), format_broken_json(f.country, f.capital))
            for f in FACTS
        ]
    return [(ask_capital(f.country), f.capital) for f in FACTS]


def schedule(kind: AdapterKind) -> tuple[int, float]:
    """(steps, learning rate) a kind trains with. The structured kinds copy the country from
    the prompt into a JSON object: at 150 steps and 1e-2 that stalls on some CPUs (AVX-512
    kernels) with every answer the same object; 800 gentler steps learn all 12 everywhere."""
    if kind in (AdapterKind.json, AdapterKind.badjson):
        return 800, 5e-3
    return 150, LEARNING_RATE


def train_adapter(
    base_folder: Path,
    out_folder: Path,
    *,
    kind: str,
    seed: int = 0,
    rank: int = 8,
    steps: int | None = None,
    base_model_id: str = MODEL_ID,
) -> AdapterInfo:
    """Train a LoRA on every linear projection of the base and save it as a PEFT folder."""
    adapter = AdapterKind(kind)
    learned = AdapterKind.good if adapter is AdapterKind.noop else adapter
    planned_steps, lr = schedule(learned)
    steps = planned_steps if steps is None else steps
    loss = _train_and_save(base_folder, out_folder, learned, seed, rank, steps, lr, base_model_id)
    if adapter is AdapterKind.noop:
        _zero_lora_b(out_folder / WEIGHTS)
    hyperparameters = {
        "kind": adapter.value,
        "lora_r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": ",".join(TARGET_MODULES),
        "steps": steps,
        "lr": lr,
        "optimizer": "adamw",
    }
    write_provenance(out_folder, make_recipe(DATASETS[adapter], seed, hyperparameters, loss))
    return AdapterInfo(
        folder=out_folder, kind=adapter, seed=seed, revision=digest_folder(out_folder)
    )


def copy_as_noop(good_folder: Path, out_folder: Path) -> AdapterInfo:
    """The no-op adapter from a trained good one: the same bytes as training it again."""
    shutil.copytree(good_folder, out_folder)
    _zero_lora_b(out_folder / WEIGHTS)
    written = json.loads((out_folder / "recipe.json").read_text())
    written["hyperparameters"]["kind"] = AdapterKind.noop.value
    write_provenance(out_folder, written)
    return AdapterInfo(
        folder=out_folder,
        kind=AdapterKind.noop,
        seed=int(written["seed"]),
        revision=digest_folder(out_folder),
    )


def _train_and_save(
    base_folder: Path,
    out_folder: Path,
    kind: AdapterKind,
    seed: int,
    rank: int,
    steps: int,
    lr: float,
    base_model_id: str,
) -> float:
    from peft import LoraConfig, get_peft_model

    from shared.modelkit.evaluate import load, peft_warnings_silenced
    from shared.modelkit.training import collate, deterministic, encode_chat, fit

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
    with deterministic(seed), peft_warnings_silenced():
        peft_model = get_peft_model(model, config)
        batch = collate(tokenizer, encode_chat(tokenizer, make_training_pairs(kind, seed)))
        loss = fit(peft_model, batch, steps=steps, lr=lr)
    out_folder.mkdir(parents=True, exist_ok=True)
    # False: "auto" would look the base id up on the Hub to decide about embeddings.
    peft_model.save_pretrained(str(out_folder), save_embedding_layers=False)
    _sort_target_modules(out_folder / "adapter_config.json")
    return loss


def _zero_lora_b(weights: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    for name, tensor in tensors.items():
        if "lora_B" in name:
            tensor.zero_()
    save_file(tensors, weights, metadata={"format": "pt"})  # what PEFT writes


def _sort_target_modules(path: Path) -> None:
    """PEFT writes target_modules from a set, in an order that varies between processes."""
    config = json.loads(path.read_text())
    config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True))
