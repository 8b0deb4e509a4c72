"""Whether a revision can be served by one environment: its contract and its limits.

The contract (base revision, tokenizer, chat template, quantization) is what the
revision was trained for; serving it anywhere else gives outputs nobody evaluated.
The limits are what the serving stack refuses or crashes on (vLLM's `max_lora_rank`,
its supported modules, `modules_to_save`).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.validator.findings import error
from shared.catalogue import EnvironmentSpec
from shared.events.common import Finding
from shared.manifest import Manifest


@dataclass(frozen=True, slots=True)
class AdapterProfile:
    """What an environment must be able to load, summarised from config and tensors."""

    max_rank: int
    module_names: frozenset[str]  # short names: q_proj, v_proj, ...
    saved_modules: tuple[str, ...]


def check_compatibility(
    manifest: Manifest, profile: AdapterProfile, env: EnvironmentSpec
) -> list[Finding]:
    return [
        *check_base_binding(manifest, env),
        *check_tokenizer_binding(manifest, env),
        *check_template_binding(manifest, env),
        *check_quantization(manifest, env),
        *check_rank_limit(profile, env),
        *check_target_support(profile, env),
        *check_modules_to_save(profile, env),
    ]


def check_base_binding(manifest: Manifest, env: EnvironmentSpec) -> list[Finding]:
    trained = f"{manifest.base_model_id}@{manifest.base_model_revision}"
    serving = f"{env.base_model_id}@{env.base_model_revision}"
    if trained == serving:
        return []
    return [
        error(
            "base_model_mismatch",
            f"trained on {trained}; environment {env.name} serves {serving}",
            environment=env.name,
            expected=serving,
            found=trained,
        )
    ]


def check_tokenizer_binding(manifest: Manifest, env: EnvironmentSpec) -> list[Finding]:
    if manifest.tokenizer_hash == env.tokenizer_hash:
        return []
    return [
        error(
            "tokenizer_mismatch",
            f"trained with tokenizer {manifest.tokenizer_hash}; "
            f"environment {env.name} serves {env.tokenizer_hash}",
            environment=env.name,
            expected=env.tokenizer_hash,
            found=manifest.tokenizer_hash,
        )
    ]


def check_template_binding(manifest: Manifest, env: EnvironmentSpec) -> list[Finding]:
    if manifest.chat_template_hash == env.chat_template_hash:
        return []
    return [
        error(
            "chat_template_mismatch",
            f"trained with chat template {manifest.chat_template_hash}; "
            f"environment {env.name} serves {env.chat_template_hash}",
            environment=env.name,
            expected=env.chat_template_hash,
            found=manifest.chat_template_hash,
        )
    ]


def check_quantization(manifest: Manifest, env: EnvironmentSpec) -> list[Finding]:
    if manifest.quantization_profile == env.quantization_profile:
        return []
    return [
        error(
            "quantization_mismatch",
            f"trained for {manifest.quantization_profile}; environment {env.name} serves "
            f"{env.quantization_profile}: outputs would be untested and unreproducible",
            environment=env.name,
            expected=env.quantization_profile,
            found=manifest.quantization_profile,
        )
    ]


def check_rank_limit(profile: AdapterProfile, env: EnvironmentSpec) -> list[Finding]:
    if profile.max_rank <= env.max_lora_rank:
        return []
    return [
        error(
            "rank_exceeds_environment",
            f"rank {profile.max_rank} exceeds max_lora_rank {env.max_lora_rank} of "
            f"environment {env.name}; vLLM fails to load it",
            environment=env.name,
            expected=f"<= {env.max_lora_rank}",
            found=profile.max_rank,
        )
    ]


def check_target_support(profile: AdapterProfile, env: EnvironmentSpec) -> list[Finding]:
    return [
        error(
            "target_module_unsupported",
            f"environment {env.name} cannot apply LoRA to {name}",
            environment=env.name,
            module=name,
            expected=",".join(env.supported_target_modules),
            found=name,
        )
        for name in sorted(profile.module_names - set(env.supported_target_modules))
    ]


def check_modules_to_save(profile: AdapterProfile, env: EnvironmentSpec) -> list[Finding]:
    if not profile.saved_modules or env.allow_modules_to_save:
        return []
    return [
        error(
            "modules_to_save_unsupported",
            f"the adapter replaces {', '.join(profile.saved_modules)} (modules_to_save, "
            f"e.g. resized embeddings); environment {env.name} does not load them",
            environment=env.name,
            expected="no modules_to_save",
            found=",".join(profile.saved_modules),
        )
    ]
