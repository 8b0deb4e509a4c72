"""One row per call of one validator check on plain values, with the codes it must give.

`Row.codes` is the exact multiset of finding codes; an empty tuple is a passing row.
Every public `check_*` function has at least one passing and one failing row. This
module holds the rows about the revision's own artifacts; `contract_rows` the rest.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.validator import checks, integrity
from services.validator import lora_tensors as lora
from services.validator.compatibility import AdapterProfile
from services.validator.peft_config import LoraConfig
from shared.events.common import Finding
from shared.manifest import FileEntry, Manifest
from shared.safetensors_header import HeaderError, TensorInfo, read_header
from tests.corpus import st_writer
from tests.corpus.adapters import (
    HIDDEN,
    adapter_config,
    environment_for,
    lora_tensors,
    tiny_base_spec,
)

BASE = tiny_base_spec()
OTHER_BASE = tiny_base_spec(revision="f" * 40)
ENV = environment_for(BASE)
WEIGHTS, CONFIG_FILE = "adapter_model.safetensors", "adapter_config.json"
FILES = (
    FileEntry(path=CONFIG_FILE, sha256="a" * 64, size=300),
    FileEntry(path=WEIGHTS, sha256="b" * 64, size=9000),
)
MANIFEST = Manifest(
    adapter="acme/support-bot",
    revision="sha256:" + "c" * 64,
    files=FILES,
    base_model_id=BASE.model_id,
    base_model_revision=BASE.revision,
    tokenizer_revision=BASE.tokenizer_revision,
    tokenizer_hash=BASE.tokenizer_hash,
    chat_template_hash=BASE.chat_template_hash,
    quantization_profile="bf16",
    target_environments=("staging",),
    recipe={"seed": 7, "dataset_ids": ["tickets"]},
    data_scope={
        "corpora": ["tickets"],
        "time_window_start": "2026-01-01",
        "time_window_end": "2026-03-31",
    },
    submitter="alice",
    trained_event_id="e-1",
    source_uri="file:///tmp/a",
)
HASHES = {f.path: (f.sha256, f.size) for f in FILES}
PROFILE = AdapterProfile(max_rank=8, module_names=frozenset({"q_proj", "v_proj"}), saved_modules=())


@dataclass(frozen=True)
class Row:
    id: str
    check: Callable[..., list[Finding]]
    args: tuple[Any, ...]
    codes: tuple[str, ...] = ()

    def call(self) -> list[Finding]:
        return self.check(*self.args)


def manifest(**fields: Any) -> Manifest:
    return dataclasses.replace(MANIFEST, **fields)


def config(**fields: Any) -> LoraConfig:
    return LoraConfig.from_mapping({**adapter_config(BASE), **fields})


def infos(arrays: Mapping[str, np.ndarray]) -> dict[str, TensorInfo]:
    data = st_writer.encode(arrays)
    return dict(read_header(io.BytesIO(data), len(data)).tensors)


def tensors(arrays: Mapping[str, np.ndarray] | None = None, **kwargs: Any) -> lora.AdapterTensors:
    return lora.classify_tensors(
        infos(arrays if arrays is not None else lora_tensors(BASE, **kwargs))
    )


def renamed(old: str, new: str) -> lora.AdapterTensors:
    return tensors({n.replace(old, new): a for n, a in lora_tensors(BASE).items()})


GOOD = tensors()
HEADER = read_header(
    io.BytesIO(st_writer.encode(lora_tensors(BASE))), len(st_writer.encode(lora_tensors(BASE)))
)
EMPTY_HEADER = read_header(io.BytesIO(st_writer.frame(b"{}")), 10)
WRONG_B = {
    **lora_tensors(BASE),
    "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight": np.zeros(
        (HIDDEN, 4), np.float32
    ),
}
MISSING_B = {n: a for n, a in lora_tensors(BASE).items() if "0.self_attn.q_proj.lora_B" not in n}
DORA = {
    **lora_tensors(BASE),
    "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector": np.ones(
        HIDDEN, np.float32
    ),
}


def _config_findings(**fields: Any) -> Row:
    return Row(
        f"config_{'_'.join(fields)}",
        checks.check_adapter_config,
        ({**adapter_config(BASE), **fields}, None),
        ("adapter_config_invalid",),
    )


ARTIFACT_ROWS: tuple[Row, ...] = (
    Row("hashes_match", integrity.check_file_hashes, (MANIFEST, HASHES)),
    Row(
        "blob_absent",
        integrity.check_file_hashes,
        (MANIFEST, {CONFIG_FILE: HASHES[CONFIG_FILE]}),
        ("file_missing",),
    ),
    Row(
        "sha_differs",
        integrity.check_file_hashes,
        (MANIFEST, {**HASHES, WEIGHTS: ("d" * 64, 9000)}),
        ("hash_mismatch",),
    ),
    Row(
        "size_differs",
        integrity.check_file_hashes,
        (MANIFEST, {**HASHES, WEIGHTS: ("b" * 64, 9001)}),
        ("hash_mismatch",),
    ),
    Row(
        "formats_safe",
        integrity.check_file_formats,
        (MANIFEST, {WEIGHTS: "safetensors", CONFIG_FILE: "unknown"}),
    ),
    Row(
        "pt_and_ckpt_names",
        integrity.check_file_formats,
        (
            manifest(
                files=(
                    FileEntry(path="w.pt", sha256="e" * 64, size=1),
                    FileEntry(path="sub/w.CKPT", sha256="f" * 64, size=1),
                )
            ),
            {},
        ),
        ("unsafe_format", "unsafe_format"),
    ),
    Row(
        "zip_bytes_named_json",
        integrity.check_file_formats,
        (MANIFEST, {WEIGHTS: "safetensors", CONFIG_FILE: "zip"}),
        ("unsafe_format",),
    ),
    Row("headers_parsed", integrity.check_headers, ({WEIGHTS: HEADER},)),
    Row(
        "header_refused",
        integrity.check_headers,
        ({WEIGHTS: HeaderError("truncated", "short")},),
        ("truncated",),
    ),
    Row("weights_present", integrity.check_has_weights, (MANIFEST, {WEIGHTS: HEADER}, 4)),
    Row(
        "unreadable_weights_speak_for_themselves",
        integrity.check_has_weights,
        (MANIFEST, {WEIGHTS: HeaderError("truncated", "short")}, 0),
    ),
    Row(
        "no_safetensors_file",
        integrity.check_has_weights,
        (manifest(files=FILES[:1]), {}, 0),
        ("no_weights",),
    ),
    Row(
        "safetensors_without_lora",
        integrity.check_has_weights,
        (MANIFEST, {WEIGHTS: EMPTY_HEADER}, 0),
        ("no_weights",),
    ),
    Row("config_valid", checks.check_adapter_config, (adapter_config(BASE), None)),
    Row("config_absent", checks.check_adapter_config, (None, None), ("adapter_config_missing",)),
    Row(
        "config_unreadable",
        checks.check_adapter_config,
        (None, "not JSON"),
        ("adapter_config_invalid",),
    ),
    _config_findings(peft_type="IA3"),
    _config_findings(r=0),
    _config_findings(r=True),
    _config_findings(lora_alpha="16"),
    _config_findings(target_modules=[]),
    _config_findings(target_modules="(unclosed"),
    _config_findings(base_model_name_or_path=""),
    _config_findings(bias="some"),
    _config_findings(rank_pattern={"q_proj": 0}),
    _config_findings(modules_to_save="lm_head"),
    _config_findings(use_dora="yes"),
    Row(
        "config_not_an_object",
        checks.check_adapter_config,
        ([1, 2], None),
        ("adapter_config_invalid",),
    ),
    Row("modules_in_base", lora.check_modules_exist, (GOOD, BASE)),
    Row(
        "gpt2_prefix",
        lora.check_modules_exist,
        (renamed("model.layers.", "transformer.h."), BASE),
        ("unknown_target_module",) * 2,
    ),
    Row(
        "no_peft_prefix",
        lora.check_modules_exist,
        (renamed("base_model.model.", ""), BASE),
        ("unknown_target_module",) * 4,
    ),
    Row("config_targets_in_base", lora.check_config_targets_exist, (config(), BASE)),
    Row("all_linear", lora.check_config_targets_exist, (config(target_modules="all-linear"), BASE)),
    Row(
        "config_target_c_attn",
        lora.check_config_targets_exist,
        (config(target_modules=["q_proj", "c_attn"]), BASE),
        ("unknown_target_module",),
    ),
    Row(
        "config_regex_matches_nothing",
        lora.check_config_targets_exist,
        (config(target_modules=r".*\.attn\.c_attn"), BASE),
        ("unknown_target_module",),
    ),
    Row("pairs_complete", lora.check_pairs_complete, (GOOD,)),
    Row("b_missing", lora.check_pairs_complete, (tensors(MISSING_B),), ("lora_pair_incomplete",)),
    Row("shapes_fit", lora.check_shapes, (GOOD, BASE)),
    Row(
        "b_rank_differs_from_a",
        lora.check_shapes,
        (tensors(WRONG_B), BASE),
        ("lora_shape_mismatch",),
    ),
    Row("ranks_agree", lora.check_ranks, (GOOD, config())),
    Row(
        "rank_pattern_honoured",
        lora.check_ranks,
        (GOOD, config(r=4, rank_pattern={"q_proj": 8, r"layers\.\d+\.self_attn\.v_proj": 8})),
    ),
    Row("config_r_4", lora.check_ranks, (GOOD, config(r=4)), ("rank_mismatch",) * 2),
    Row(
        "rank_pattern_disagrees",
        lora.check_ranks,
        (GOOD, config(rank_pattern={"v_proj": 16})),
        ("rank_mismatch",),
    ),
    Row("all_targeted", lora.check_tensors_targeted, (GOOD, config())),
    Row(
        "v_not_targeted",
        lora.check_tensors_targeted,
        (GOOD, config(target_modules=["q_proj"])),
        ("target_modules_mismatch",),
    ),
    Row(
        "v_excluded",
        lora.check_tensors_targeted,
        (GOOD, config(exclude_modules=["v_proj"])),
        ("target_modules_mismatch",),
    ),
    Row("targets_have_tensors", lora.check_targets_have_tensors, (GOOD, config(), BASE)),
    Row(
        "k_targeted_without_tensors",
        lora.check_targets_have_tensors,
        (GOOD, config(target_modules=["q_proj", "k_proj", "v_proj"]), BASE),
        ("target_without_tensors",),
    ),
    Row("only_lora_tensors", lora.check_no_unexpected, (GOOD,)),
    Row("dora_magnitude", lora.check_no_unexpected, (tensors(DORA),), ("unexpected_tensor",)),
)
