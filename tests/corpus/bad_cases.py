"""Bad adapter revisions, one defect each, and the finding code each must raise.

Every case stages a good adapter (`adapters.stage`) and breaks one thing: its files,
its config, its tensors, its manifest, the store after registration, or the catalogue.
Pickles are written as bytes (`pickle.dumps`) and never loaded.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.artifacts import LocalArtifactStore
from shared.manifest import Manifest
from tests.corpus import st_writer
from tests.corpus.adapters import (
    ATTENTION,
    HIDDEN,
    VOCAB,
    Scenario,
    lora_tensors,
    stage,
    tiny_base_spec,
    tiny_tokenizer_files,
)

WEIGHTS = "adapter_model.safetensors"
OTHER_REVISION = "f" * 40
PICKLED = pickle.dumps({"base_model.model.lm_head.lora_A.weight": [0.0] * 16}, protocol=4)


@dataclass(frozen=True)
class BadCase:
    name: str
    expected_code: str
    build: Callable[[Path], Scenario]
    # What `build` passes to `stage`: the bad-input corpus reuses `adapter` and `edit`.
    stage_args: Mapping[str, Any] = field(default_factory=dict)


def _replace_weights(data: bytes, *, name: str = WEIGHTS) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / WEIGHTS).unlink()
        (folder / name).write_bytes(data)

    return edit


def _torch_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", PICKLED)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", bytes(64))
    return buffer.getvalue()


def _good_weights() -> bytes:
    return st_writer.encode(lora_tensors(tiny_base_spec()))


def _flip_last_byte(store: LocalArtifactStore, manifest: Manifest) -> None:
    entry = manifest.file(WEIGHTS)
    assert entry is not None
    blob = store.blob_path(entry.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))


def _delete_blob(store: LocalArtifactStore, manifest: Manifest) -> None:
    entry = manifest.file(WEIGHTS)
    assert entry is not None
    store.blob_path(entry.sha256).unlink()


def _renamed(tensors: dict[str, np.ndarray], old: str, new: str) -> dict[str, np.ndarray]:
    return {name.replace(old, new): t for name, t in tensors.items()}


def _without(suffix: str) -> dict[str, np.ndarray]:
    return {n: t for n, t in lora_tensors(tiny_base_spec()).items() if not n.endswith(suffix)}


def _wrong_b() -> dict[str, np.ndarray]:
    tensors = lora_tensors(tiny_base_spec())
    name = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"
    tensors[name] = np.zeros((HIDDEN, 8), np.float32)  # v_proj's out is 32, not 64
    return tensors


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return edit


def _one_char_template() -> dict[str, bytes]:
    files = tiny_tokenizer_files()
    config = json.loads(files["tokenizer_config.json"])
    config["chat_template"] = config["chat_template"].replace("</s>", "</S>")
    return {**files, "tokenizer_config.json": json.dumps(config, indent=2).encode()}


def _case(name: str, code: str, **stage_args: Any) -> BadCase:
    return BadCase(name, code, lambda root: stage(root, **stage_args), stage_args)


def _with_nan() -> dict[str, np.ndarray]:
    tensors = lora_tensors(tiny_base_spec())
    name = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"
    tensors[name] = tensors[name].copy()
    tensors[name][3, 2] = np.nan  # one diverged step is enough
    return tensors


def _as_float64() -> dict[str, np.ndarray]:
    return {n: t.astype(np.float64) for n, t in lora_tensors(tiny_base_spec()).items()}


def _tokenizer_with_auto_map() -> dict[str, bytes]:
    files = tiny_tokenizer_files()
    config = json.loads(files["tokenizer_config.json"])
    config["auto_map"] = {"AutoTokenizer": ["tokenization_acme.AcmeTokenizer", None]}
    return {**files, "tokenizer_config.json": json.dumps(config, indent=2).encode()}


EMBED = np.zeros((VOCAB + 8, HIDDEN), np.float32)  # embeddings resized for added tokens
PREFIX_TUNING = {"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 20}

BAD_CASES: tuple[BadCase, ...] = (
    _case("byte_changed_in_store_after_registration", "hash_mismatch", tamper=_flip_last_byte),
    _case("blob_deleted_from_store", "file_missing", tamper=_delete_blob),
    _case(
        "pickled_bin_weights",
        "unsafe_format",
        edit=_replace_weights(PICKLED, name="adapter_model.bin"),
    ),
    _case("pickle_renamed_safetensors", "pickle_detected", edit=_replace_weights(PICKLED)),
    _case("torch_zip_renamed_safetensors", "unsafe_format", edit=_replace_weights(_torch_zip())),
    _case("truncated_safetensors", "truncated", edit=_replace_weights(_good_weights()[:-40])),
    _case(
        "header_length_bomb",
        "header_too_large",
        edit=_replace_weights((1 << 40).to_bytes(8, "little") + b'{"a":'),
    ),
    _case(
        "header_not_json",
        "malformed_header",
        edit=_replace_weights(st_writer.frame(b'{"x.lora_A.weight": {"dtype": "F32",')),
    ),
    _case(
        "tensor_offsets_leave_a_hole",
        "malformed_header",
        edit=_replace_weights(
            st_writer.frame(b'{"t":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', b"abc")
        ),
    ),
    _case(
        "module_prefix_not_in_base",
        "unknown_target_module",
        adapter={
            "tensors": _renamed(lora_tensors(tiny_base_spec()), "model.layers.", "transformer.h.")
        },
    ),
    _case(
        "config_targets_a_gpt2_module",
        "unknown_target_module",
        adapter={"config": {"target_modules": ["c_attn"]}},
    ),
    _case(
        "tensors_on_a_module_the_config_does_not_target",
        "target_modules_mismatch",
        adapter={"config": {"target_modules": ["q_proj"]}},
    ),
    _case("lora_b_of_the_wrong_shape", "lora_shape_mismatch", adapter={"tensors": _wrong_b()}),
    _case("rank_above_environment_max", "rank_exceeds_environment", adapter={"r": 64}),
    _case("config_rank_disagrees_with_tensors", "rank_mismatch", adapter={"config": {"r": 4}}),
    _case(
        "modules_to_save_embed_tokens",
        "modules_to_save_unsupported",
        adapter={
            "config": {"modules_to_save": ["embed_tokens"]},
            "tensors": {
                **lora_tensors(tiny_base_spec()),
                "base_model.model.model.embed_tokens.weight": EMBED,
            },
        },
    ),
    _case(
        "dora_magnitude_vector",
        "unexpected_tensor",
        adapter={
            "tensors": {
                **lora_tensors(tiny_base_spec()),
                "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector": np.ones(
                    HIDDEN, np.float32
                ),
            }
        },
    ),
    _case("missing_adapter_config", "adapter_config_missing", edit=_remove("adapter_config.json")),
    _case("prefix_tuning_config", "adapter_config_invalid", adapter={"config": PREFIX_TUNING}),
    _case(
        "adapter_config_not_json",
        "adapter_config_invalid",
        edit=_write("adapter_config.json", b"{'peft_type': 'LORA'"),
    ),
    _case(
        "tokenizer_from_another_revision",
        "tokenizer_mismatch",
        adapter={"tokenizer": tiny_tokenizer_files(extra_word="zebra")},
    ),
    _case(
        "environment_serves_another_tokenizer",
        "tokenizer_mismatch",
        env={"tokenizer_hash": "sha256:" + "0" * 64},
    ),
    _case(
        "chat_template_edited_by_one_character",
        "chat_template_mismatch",
        adapter={"tokenizer": _one_char_template()},
    ),
    _case(
        "trained_for_bf16_served_int4",
        "quantization_mismatch",
        env={"quantization_profile": "int4-awq"},
    ),
    _case(
        "base_revision_differs_from_environment",
        "base_model_mismatch",
        manifest={"base_model_revision": OTHER_REVISION},
    ),
    _case("base_model_not_in_catalogue", "base_model_unknown", base_known=False),
    _case(
        "unknown_target_environment",
        "unknown_environment",
        manifest={"target_environments": ("staging", "moon-base")},
    ),
    _case(
        "recipe_without_seed",
        "recipe_incomplete",
        manifest={"recipe": {"dataset_ids": ["support-tickets-2026q3"]}},
    ),
    _case("missing_data_scope", "data_scope_incomplete", manifest={"data_scope": {}}),
    _case(
        "lora_a_without_lora_b",
        "lora_pair_incomplete",
        adapter={"tensors": _without("layers.1.self_attn.v_proj.lora_B.weight")},
    ),
    _case(
        "gate_proj_where_only_attention_is_supported",
        "target_module_unsupported",
        adapter={"targets": ("q_proj", "gate_proj")},
        env={"supported_target_modules": ATTENTION},
    ),
    _case("no_weight_file", "no_weights", edit=_remove(WEIGHTS)),
    _case("nan_in_one_lora_matrix", "non_finite_values", adapter={"tensors": _with_nan()}),
    _case("weights_saved_as_float64", "dtype_not_served", adapter={"tensors": _as_float64()}),
    _case(
        "config_names_another_base",
        "declared_base_mismatch",
        adapter={"config": {"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}},
    ),
    _case(
        "python_file_beside_the_weights",
        "executable_content",
        edit=_write("modeling_acme.py", b"import os\nos.system('id')\n"),
    ),
    _case(
        "tokenizer_config_with_auto_map",
        "executable_content",
        adapter={"tokenizer": _tokenizer_with_auto_map()},
    ),
)
BY_NAME: Mapping[str, BadCase] = {case.name: case for case in BAD_CASES}
