"""Whether a revision can be served by one environment: its contract and its limits.

The contract (base revision, tokenizer, chat template, quantization; `shared.contract`) is
what the revision was trained for; serving it anywhere else gives outputs nobody evaluated.
The limits are what the serving stack refuses or crashes on (vLLM's `max_lora_rank`,
its supported modules, `modules_to_save`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.validator.findings import error
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract, Term
from shared.events.common import Finding
from shared.findings import FindingCode
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
        *check_serving_contract(manifest, env),
        *check_rank_limit(profile, env),
        *check_target_support(profile, env),
        *check_modules_to_save(profile, env),
    ]


def check_serving_contract(manifest: Manifest, env: EnvironmentSpec) -> list[Finding]:
    """One finding per term of the contract the environment breaks; base id and revision
    are one term here, the base pinned to its revision."""
    trained, serving = ServingContract.of_manifest(manifest), ServingContract.of_environment(env)
    # The environment is the fixed side: a finding expects what it serves, found the manifest's.
    broken = {m.term: m for m in serving.mismatches(trained)}
    findings = []
    if Term.BASE_MODEL_ID in broken or Term.BASE_MODEL_REVISION in broken:
        findings.append(
            error(
                FindingCode.BASE_MODEL_MISMATCH,
                f"trained on {trained.base}; environment {env.name} serves {serving.base}",
                environment=env.name,
                expected=serving.base,
                found=trained.base,
            )
        )
    for term, (code, describe) in _OTHER_TERMS.items():
        if term in broken:
            m = broken[term]
            findings.append(
                error(
                    code,
                    describe(m.found, env.name, m.wanted),
                    environment=env.name,
                    expected=m.wanted,
                    found=m.found,
                )
            )
    return findings


# For each term other than the base: its finding's code and message (trained, env, served).
_OTHER_TERMS: dict[Term, tuple[FindingCode, Callable[[str, str, str], str]]] = {
    Term.TOKENIZER_HASH: (
        FindingCode.TOKENIZER_MISMATCH,
        lambda trained, env, served: (
            f"trained with tokenizer {trained}; environment {env} serves {served}"
        ),
    ),
    Term.CHAT_TEMPLATE_HASH: (
        FindingCode.CHAT_TEMPLATE_MISMATCH,
        lambda trained, env, served: (
            f"trained with chat template {trained}; environment {env} serves {served}"
        ),
    ),
    Term.QUANTIZATION_PROFILE: (
        FindingCode.QUANTIZATION_MISMATCH,
        lambda trained, env, served: (
            f"trained for {trained}; environment {env} serves {served}: outputs would be "
            "untested and unreproducible"
        ),
    ),
}


def check_rank_limit(profile: AdapterProfile, env: EnvironmentSpec) -> list[Finding]:
    if profile.max_rank <= env.max_lora_rank:
        return []
    return [
        error(
            FindingCode.RANK_EXCEEDS_ENVIRONMENT,
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
            FindingCode.TARGET_MODULE_UNSUPPORTED,
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
            FindingCode.MODULES_TO_SAVE_UNSUPPORTED,
            f"the adapter replaces {', '.join(profile.saved_modules)} (modules_to_save, "
            f"e.g. resized embeddings); environment {env.name} does not load them",
            environment=env.name,
            expected="no modules_to_save",
            found=",".join(profile.saved_modules),
        )
    ]
