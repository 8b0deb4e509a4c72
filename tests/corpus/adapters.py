"""Structurally good LoRA adapters for a tiny LLaMA-like base, staged into a real store.

`stage(root, ...)` writes an adapter folder, registers it in a `LocalArtifactStore`
the way ingest does, and returns what the validator reads: store, manifest, base and
environments. The bad variants in `bad_cases.py` are `stage` calls with one thing wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.artifacts import LocalArtifactStore
from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.hf_folder import compute_chat_template_hash, compute_tokenizer_hash
from shared.manifest import Manifest, revision_digest
from tests.corpus import st_writer

TINY_MODEL_ID = "modelkit/tiny-llama"
TINY_REVISION = hashlib.sha1(b"modelkit/tiny-llama main").hexdigest()
HIDDEN, LAYERS, HEADS, KV_HEADS, INTERMEDIATE, VOCAB = 64, 2, 4, 2, 128, 512
KV_OUT = HIDDEN // HEADS * KV_HEADS  # 32
TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ADAPTER = "acme/support-bot"


def tiny_modules() -> dict[str, tuple[int, int]]:
    shapes = {
        "self_attn.q_proj": (HIDDEN, HIDDEN),
        "self_attn.k_proj": (KV_OUT, HIDDEN),
        "self_attn.v_proj": (KV_OUT, HIDDEN),
        "self_attn.o_proj": (HIDDEN, HIDDEN),
        "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
        "mlp.up_proj": (INTERMEDIATE, HIDDEN),
        "mlp.down_proj": (HIDDEN, INTERMEDIATE),
    }
    return {f"model.layers.{i}.{m}": s for i in range(LAYERS) for m, s in shapes.items()}


def tiny_tokenizer_files(
    *, extra_word: str | None = None, template: str = TEMPLATE
) -> dict[str, bytes]:
    """A small tokenizer folder's JSON files; `extra_word` makes another tokenizer revision."""
    words = ["<unk>", "<s>", "</s>", *(f"w{i}" for i in range(VOCAB - 3))]
    if extra_word:
        words[-1] = extra_word
    tokenizer = {
        "version": "1.0",
        "model": {
            "type": "WordLevel",
            "vocab": dict((w, i) for i, w in enumerate(words)),
            "unk_token": "<unk>",
        },
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "model_max_length": 64,
        "chat_template": template,
    }
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    return {
        "tokenizer.json": json.dumps(tokenizer).encode(),
        "tokenizer_config.json": json.dumps(config, indent=2).encode(),
        "special_tokens_map.json": json.dumps(special, indent=2).encode(),
    }


def tiny_base_spec(*, revision: str = TINY_REVISION) -> BaseModelSpec:
    """The tiny LLaMA-like base: hidden 64, 2 layers, 4 heads / 2 KV heads, vocab 512."""
    files = tiny_tokenizer_files()
    return BaseModelSpec(
        model_id=TINY_MODEL_ID,
        revision=revision,
        architecture="LlamaForCausalLM",
        modules=tiny_modules(),
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        tokenizer_revision=revision,
        tokenizer_hash=compute_tokenizer_hash(files),
        chat_template_hash=compute_chat_template_hash(files),
    )


def environment_for(base: BaseModelSpec, **overrides: Any) -> EnvironmentSpec:
    fields: dict[str, Any] = {
        "name": "staging",
        "base_model_id": base.model_id,
        "base_model_revision": base.revision,
        "tokenizer_hash": base.tokenizer_hash,
        "chat_template_hash": base.chat_template_hash,
        "quantization_profile": base.quantization_profiles[0],
        "max_lora_rank": 16,
    }
    return EnvironmentSpec(**{**fields, **overrides})


def write_base_model(folder: Path, *, shards: int = 1) -> None:
    """A Hugging Face folder of the tiny base: config, zero weights, tokenizer files."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "intermediate_size": INTERMEDIATE,
        "torch_dtype": "float16",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tensors: dict[str, np.ndarray] = {
        f"{m}.weight": np.zeros(s, np.float16) for m, s in tiny_modules().items()
    }
    tensors["model.embed_tokens.weight"] = np.zeros((VOCAB, HIDDEN), np.float16)
    tensors["lm_head.weight"] = np.zeros((VOCAB, HIDDEN), np.float16)
    tensors["model.norm.weight"] = np.ones(HIDDEN, np.float16)
    for i in range(LAYERS):
        tensors[f"model.layers.{i}.input_layernorm.weight"] = np.ones(HIDDEN, np.float16)
    names = sorted(tensors)
    for k in range(shards):
        part = {n: tensors[n] for n in names[k::shards]}
        st_writer.write(folder / f"model-{k + 1:05d}-of-{shards:05d}.safetensors", part)
    for name, data in tiny_tokenizer_files().items():
        (folder / name).write_bytes(data)


def adapter_config(
    base: BaseModelSpec,
    *,
    r: int = 8,
    alpha: float = 16,
    targets: Iterable[str] = ("q_proj", "v_proj"),
) -> dict[str, Any]:
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": list(targets),
        "bias": "none",
        "base_model_name_or_path": base.model_id,
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def lora_tensors(
    base: BaseModelSpec,
    *,
    r: int = 8,
    targets: Iterable[str] = ("q_proj", "v_proj"),
    infix: str = "",
) -> dict[str, np.ndarray]:
    """lora_A (r, in) and lora_B (out, r) for every base module with a targeted short name."""
    rng = np.random.default_rng(0)
    wanted = set(targets)
    tensors = {}
    for module, (out_features, in_features) in sorted(base.modules.items()):
        if module.rsplit(".", 1)[-1] in wanted:
            prefix = f"base_model.model.{module}"
            a = rng.normal(0, 0.02, (r, in_features)).astype(np.float32)
            b = rng.normal(0, 0.02, (out_features, r)).astype(np.float32)
            tensors[f"{prefix}.lora_A{infix}.weight"] = a
            tensors[f"{prefix}.lora_B{infix}.weight"] = b
    return tensors


def write_adapter(
    folder: Path,
    base: BaseModelSpec,
    *,
    r: int = 8,
    alpha: float = 16,
    targets: Iterable[str] = ("q_proj", "v_proj"),
    infix: str = "",
    config: Mapping[str, Any] | None = None,
    tensors: Mapping[str, np.ndarray] | None = None,
    tokenizer: Mapping[str, bytes] | None = None,
) -> None:
    """A structurally good adapter folder, with the given parts replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {**adapter_config(base, r=r, alpha=alpha, targets=targets), **(config or {})}
    (folder / "adapter_config.json").write_text(json.dumps(body, indent=2))
    weights = (
        tensors if tensors is not None else lora_tensors(base, r=r, targets=targets, infix=infix)
    )
    st_writer.write(folder / "adapter_model.safetensors", weights, {"format": "pt"})
    for name, data in (tokenizer or {}).items():
        (folder / name).write_bytes(data)


def register(
    folder: Path,
    store: LocalArtifactStore,
    base: BaseModelSpec,
    environments: Iterable[EnvironmentSpec],
    **fields: Any,
) -> Manifest:
    """Store every file and write the manifest, as ingest does for `AdapterTrained`."""
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as f:
            stored = store.put_stream(f, max_bytes=1 << 30)
        entries.append(dataclasses.replace(stored, path=path.relative_to(folder).as_posix()))
    manifest = Manifest(
        adapter=ADAPTER,
        revision=revision_digest(entries),
        files=tuple(entries),
        base_model_id=base.model_id,
        base_model_revision=base.revision,
        tokenizer_revision=base.tokenizer_revision,
        tokenizer_hash=base.tokenizer_hash,
        chat_template_hash=base.chat_template_hash,
        quantization_profile="bf16",
        target_environments=tuple(e.name for e in environments),
        recipe={
            "seed": 42,
            "dataset_ids": ["support-tickets-2026q3"],
            "hyperparameters": {"lr": "2e-4", "epochs": "3"},
        },
        data_scope={
            "corpora": ["support-tickets"],
            "time_window_start": "2026-07-01",
            "time_window_end": "2026-09-30",
            "filtering_rules": ["pii-scrubbed"],
        },
        submitter="alice",
        trained_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, str(folder))),
        source_uri=folder.as_uri(),
    )
    return dataclasses.replace(manifest, **fields)


@dataclass(frozen=True)
class Scenario:
    """A registered revision and what the validator is given alongside it."""

    store: LocalArtifactStore
    manifest: Manifest
    base: BaseModelSpec | None
    environments: tuple[EnvironmentSpec, ...]


def stage(
    root: Path,
    *,
    adapter: Mapping[str, Any] | None = None,
    edit: Callable[[Path], None] | None = None,
    manifest: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    base_known: bool = True,
    tamper: Callable[[LocalArtifactStore, Manifest], None] | None = None,
) -> Scenario:
    """Write, edit, register and optionally tamper one adapter revision under `root`."""
    base = tiny_base_spec()
    folder, store = root / "adapter", LocalArtifactStore(root / "store")
    shutil.rmtree(folder, ignore_errors=True)
    write_adapter(folder, base, **(adapter or {}))
    if edit:
        edit(folder)
    environment = environment_for(base, **(env or {}))
    registered = register(folder, store, base, [environment], **(manifest or {}))
    if tamper:
        tamper(store, registered)
    # The service looks the base up by the manifest's id and revision.
    checked = tiny_base_spec(revision=registered.base_model_revision) if base_known else None
    return Scenario(store=store, manifest=registered, base=checked, environments=(environment,))


def good_scenarios() -> dict[str, Callable[[Path], Scenario]]:
    """Structurally good revisions: none may give an error finding."""
    return {
        "plain": lambda root: stage(root),
        "with_tokenizer_files": lambda root: stage(
            root, adapter={"tokenizer": tiny_tokenizer_files()}
        ),
        "adapter_name_infix": lambda root: stage(root, adapter={"infix": ".default"}),
        "every_linear_module_at_the_rank_limit": lambda root: stage(
            root, adapter={"r": 16, "targets": (*ATTENTION, "gate_proj", "up_proj", "down_proj")}
        ),
        "modules_to_save_where_allowed": lambda root: stage(
            root,
            adapter={
                "config": {"modules_to_save": ["lm_head"]},
                "tensors": {
                    **lora_tensors(tiny_base_spec()),
                    "base_model.model.lm_head.weight": np.zeros((VOCAB, HIDDEN), np.float16),
                },
            },
            env={"allow_modules_to_save": True},
        ),
    }
