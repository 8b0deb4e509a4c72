"""Check rows about the serving contract, provenance and environments (see `check_rows`)."""

from __future__ import annotations

import dataclasses

from services.validator import checks, compatibility, provenance
from tests.corpus.adapters import ATTENTION, environment_for
from tests.corpus.check_rows import (
    BASE,
    ENV,
    GOOD,
    MANIFEST,
    OTHER_BASE,
    PROFILE,
    WRONG_B,
    Row,
    config,
    manifest,
    tensors,
)

CONTRACT_ROWS: tuple[Row, ...] = (
    Row("compatible", compatibility.check_compatibility, (MANIFEST, PROFILE, ENV)),
    Row(
        "incompatible_twice",
        compatibility.check_compatibility,
        (manifest(quantization_profile="fp8"), dataclasses.replace(PROFILE, max_rank=64), ENV),
        ("quantization_mismatch", "rank_exceeds_environment"),
    ),
    Row("same_base", compatibility.check_serving_contract, (MANIFEST, ENV)),
    Row(
        "other_base",
        compatibility.check_serving_contract,
        (manifest(base_model_revision="f" * 40), ENV),
        ("base_model_mismatch",),
    ),
    Row("same_tokenizer", compatibility.check_serving_contract, (MANIFEST, ENV)),
    Row(
        "other_tokenizer",
        compatibility.check_serving_contract,
        (manifest(tokenizer_hash="sha256:" + "0" * 64), ENV),
        ("tokenizer_mismatch",),
    ),
    Row("same_template", compatibility.check_serving_contract, (MANIFEST, ENV)),
    Row(
        "other_template",
        compatibility.check_serving_contract,
        (manifest(chat_template_hash="none"), ENV),
        ("chat_template_mismatch",),
    ),
    Row("same_quantization", compatibility.check_serving_contract, (MANIFEST, ENV)),
    Row(
        "bf16_served_int4",
        compatibility.check_serving_contract,
        (MANIFEST, environment_for(BASE, quantization_profile="int4")),
        ("quantization_mismatch",),
    ),
    Row(
        "rank_at_limit",
        compatibility.check_rank_limit,
        (dataclasses.replace(PROFILE, max_rank=16), ENV),
    ),
    Row(
        "rank_over_limit",
        compatibility.check_rank_limit,
        (dataclasses.replace(PROFILE, max_rank=32), ENV),
        ("rank_exceeds_environment",),
    ),
    Row("targets_supported", compatibility.check_target_support, (PROFILE, ENV)),
    Row(
        "mlp_on_attention_only",
        compatibility.check_target_support,
        (
            dataclasses.replace(
                PROFILE, module_names=frozenset({"q_proj", "gate_proj", "up_proj"})
            ),
            environment_for(BASE, supported_target_modules=ATTENTION),
        ),
        ("target_module_unsupported",) * 2,
    ),
    Row("nothing_saved", compatibility.check_modules_to_save, (PROFILE, ENV)),
    Row(
        "saved_where_allowed",
        compatibility.check_modules_to_save,
        (
            dataclasses.replace(PROFILE, saved_modules=("lm_head",)),
            environment_for(BASE, allow_modules_to_save=True),
        ),
    ),
    Row(
        "saved_where_refused",
        compatibility.check_modules_to_save,
        (dataclasses.replace(PROFILE, saved_modules=("embed_tokens",)), ENV),
        ("modules_to_save_unsupported",),
    ),
    Row("base_known", provenance.check_base, (MANIFEST, BASE)),
    Row("base_unknown", provenance.check_base, (MANIFEST, None), ("base_model_unknown",)),
    Row(
        "base_given_is_another",
        provenance.check_base,
        (MANIFEST, OTHER_BASE),
        ("base_model_mismatch",),
    ),
    Row(
        "base_has_no_int4",
        provenance.check_base,
        (manifest(quantization_profile="int4"), BASE),
        ("quantization_mismatch",),
    ),
    Row("no_shipped_tokenizer", provenance.check_shipped_tokenizer, (MANIFEST, None)),
    Row(
        "shipped_tokenizer_same",
        provenance.check_shipped_tokenizer,
        (MANIFEST, BASE.tokenizer_hash),
    ),
    Row(
        "shipped_tokenizer_other",
        provenance.check_shipped_tokenizer,
        (MANIFEST, "sha256:" + "1" * 64),
        ("tokenizer_mismatch",),
    ),
    Row("no_shipped_template", provenance.check_shipped_template, (MANIFEST, None)),
    Row(
        "shipped_template_missing",
        provenance.check_shipped_template,
        (MANIFEST, "none"),
        ("chat_template_mismatch",),
    ),
    Row("recipe_complete", provenance.check_recipe, (MANIFEST.recipe,)),
    Row("seed_zero_is_a_seed", provenance.check_recipe, ({"seed": 0, "dataset_ids": ["d"]},)),
    Row("recipe_empty", provenance.check_recipe, ({},), ("recipe_incomplete",)),
    Row(
        "seed_as_text",
        provenance.check_recipe,
        ({"seed": "7", "dataset_ids": ["d"]},),
        ("recipe_incomplete",),
    ),
    Row(
        "seed_negative_as_the_trainer_client_writes_a_missing_one",
        provenance.check_recipe,
        ({"seed": -1, "dataset_ids": ["d"]},),
        ("recipe_incomplete",),
    ),
    Row(
        "seed_as_bool",
        provenance.check_recipe,
        ({"seed": True, "dataset_ids": ["d"]},),
        ("recipe_incomplete",),
    ),
    Row(
        "no_datasets",
        provenance.check_recipe,
        ({"seed": 1, "dataset_ids": []},),
        ("recipe_incomplete",),
    ),
    Row("scope_complete", provenance.check_data_scope, (MANIFEST.data_scope,)),
    Row(
        "scope_free_form_window",
        provenance.check_data_scope,
        ({"corpora": ["c"], "time_window_start": "Q1 2026", "time_window_end": "Q2 2026"},),
    ),
    Row("scope_empty", provenance.check_data_scope, ({},), ("data_scope_incomplete",)),
    Row(
        "scope_reversed_window",
        provenance.check_data_scope,
        ({"corpora": ["c"], "time_window_start": "2026-05-01", "time_window_end": "2026-01-01"},),
        ("data_scope_incomplete",),
    ),
    Row("environments_known", checks.check_environments_known, (MANIFEST, [ENV], [])),
    Row(
        "environment_unknown",
        checks.check_environments_known,
        (MANIFEST, [ENV], ["moon"]),
        ("unknown_environment",),
    ),
    Row(
        "no_environment_named",
        checks.check_environments_known,
        (manifest(target_environments=()), [], []),
        ("no_target_environments",),
    ),
    Row("against_base_clean", checks.check_against_base, (GOOD, config(), BASE)),
    Row(
        "against_base_no_config",
        checks.check_against_base,
        (tensors(WRONG_B), None, BASE),
        ("lora_shape_mismatch",),
    ),
    Row("against_config_clean", checks.check_against_config, (GOOD, config())),
    Row(
        "against_config_r_16",
        checks.check_against_config,
        (GOOD, config(r=16)),
        ("rank_mismatch",) * 2,
    ),
)
