"""A base model described from its folder; tokenizer and chat template hashes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from shared.hf_folder import (
    NO_TEMPLATE,
    FolderError,
    chat_template_hash,
    compute_chat_template_hash,
    compute_tokenizer_hash,
    describe_base_model,
    linear_modules,
    tokenizer_hash,
)
from tests.corpus.adapters import (
    TINY_REVISION,
    tiny_base_spec,
    tiny_tokenizer_files,
    write_base_model,
)


def describe(folder: Path) -> object:
    return describe_base_model(
        folder,
        model_id="modelkit/tiny-llama",
        revision=TINY_REVISION,
        tokenizer_revision=TINY_REVISION,
    )


@pytest.mark.parametrize("shards", [1, 2])
def test_describes_the_tiny_base_exactly_as_the_catalogue_spec(tmp_path: Path, shards: int) -> None:
    write_base_model(tmp_path, shards=shards)
    assert describe(tmp_path) == tiny_base_spec()


def test_keeps_linear_projections_and_drops_embeddings_heads_and_norms() -> None:
    shapes = {
        "model.embed_tokens.weight": (512, 64),
        "lm_head.weight": (512, 64),
        "model.norm.weight": (64,),
        "model.layers.0.post_attention_layernorm.weight": (64,),
        "model.layers.0.self_attn.k_proj.weight": (32, 64),
        "model.layers.0.self_attn.k_proj.bias": (32,),
        "transformer.h.0.attn.c_attn.weight": (192, 64),
        "model.layers.0.self_attn.rotary_emb.inv_freq": (8,),
    }
    assert linear_modules(shapes) == {
        "model.layers.0.self_attn.k_proj": (32, 64),
        "transformer.h.0.attn.c_attn": (192, 64),
    }


def test_a_folder_without_config_or_weights_is_refused(tmp_path: Path) -> None:
    write_base_model(tmp_path)
    for shard in tmp_path.glob("model*.safetensors"):
        shard.unlink()
    with pytest.raises(FolderError, match="no model"):
        describe(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FolderError, match=r"config\.json"):
        describe(tmp_path)


def test_a_pickled_weight_shard_is_refused_by_name_and_code(tmp_path: Path) -> None:
    write_base_model(tmp_path)
    (tmp_path / "model-00001-of-00001.safetensors").write_bytes(pickle.dumps({"w": 1}, protocol=4))
    with pytest.raises(FolderError, match="pickle_detected"):
        describe(tmp_path)


def test_tokenizer_hash_ignores_json_formatting_and_the_chat_template() -> None:
    files = tiny_tokenizer_files()
    reformatted = {
        n: json.dumps(json.loads(d), indent=4, sort_keys=False).encode() for n, d in files.items()
    }
    other_template = tiny_tokenizer_files(template="{{ messages }}")
    assert compute_tokenizer_hash(reformatted) == compute_tokenizer_hash(files)
    assert compute_tokenizer_hash(other_template) == compute_tokenizer_hash(files)


def test_tokenizer_hash_changes_with_the_vocabulary_and_the_special_tokens() -> None:
    files = tiny_tokenizer_files()
    without_special = {n: d for n, d in files.items() if n != "special_tokens_map.json"}
    digests = {
        compute_tokenizer_hash(files),
        compute_tokenizer_hash(tiny_tokenizer_files(extra_word="zebra")),
        compute_tokenizer_hash(without_special),
    }
    assert len(digests) == 3
    assert all(d.startswith("sha256:") and len(d) == 71 for d in digests)


def test_tokenizer_hash_needs_a_tokenizer_file() -> None:
    with pytest.raises(FolderError):
        compute_tokenizer_hash({"special_tokens_map.json": b"{}"})
    with pytest.raises(FolderError, match="not JSON"):
        compute_tokenizer_hash({"tokenizer.json": b"{oops"})


def test_chat_template_hash_changes_with_one_character_and_is_none_without_a_template() -> None:
    files = tiny_tokenizer_files()
    edited = tiny_tokenizer_files(
        template=json.loads(files["tokenizer_config.json"])["chat_template"] + " "
    )
    config = json.loads(files["tokenizer_config.json"])
    del config["chat_template"]
    assert compute_chat_template_hash(files) != compute_chat_template_hash(edited)
    assert (
        compute_chat_template_hash({"tokenizer_config.json": json.dumps(config).encode()})
        == NO_TEMPLATE
    )
    assert compute_chat_template_hash({}) == NO_TEMPLATE


def test_a_jinja_template_file_wins_over_the_config_key(tmp_path: Path) -> None:
    write_base_model(tmp_path)
    (tmp_path / "chat_template.jinja").write_text("{{ bos_token }}")
    expected = compute_chat_template_hash({"chat_template.jinja": b"{{ bos_token }}"})
    assert chat_template_hash(tmp_path) == expected != tiny_base_spec().chat_template_hash


def test_named_templates_hash_as_canonical_json() -> None:
    named = [
        {"name": "default", "template": "{{ x }}"},
        {"name": "tool_use", "template": "{{ y }}"},
    ]
    config = json.dumps({"chat_template": named}).encode()
    digest = compute_chat_template_hash({"tokenizer_config.json": config})
    assert digest.startswith("sha256:") and digest != NO_TEMPLATE


def test_folder_hashes_match_the_hashes_of_the_same_bytes(tmp_path: Path) -> None:
    write_base_model(tmp_path)
    files = tiny_tokenizer_files()
    assert tokenizer_hash(tmp_path) == compute_tokenizer_hash(files)
    assert chat_template_hash(tmp_path) == compute_chat_template_hash(files)
