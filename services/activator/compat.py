"""The serving contract: a revision loads only where base, tokenizer, template and
quantization are exactly those its manifest was trained for."""

from __future__ import annotations

from dataclasses import dataclass, fields

from shared.catalogue import EnvironmentSpec
from shared.manifest import Manifest


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingContract:
    base_model_id: str
    base_model_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str = ""  # "" where the target does not say


def contract_of_manifest(manifest: Manifest) -> ServingContract:
    return ServingContract(
        base_model_id=manifest.base_model_id,
        base_model_revision=manifest.base_model_revision,
        tokenizer_hash=manifest.tokenizer_hash,
        chat_template_hash=manifest.chat_template_hash,
        quantization_profile=manifest.quantization_profile,
    )


def contract_of_environment(spec: EnvironmentSpec) -> ServingContract:
    return ServingContract(
        base_model_id=spec.base_model_id,
        base_model_revision=spec.base_model_revision,
        tokenizer_hash=spec.tokenizer_hash,
        chat_template_hash=spec.chat_template_hash,
        quantization_profile=spec.quantization_profile,
    )


def mismatches(wanted: ServingContract, found: ServingContract, where: str) -> list[str]:
    """One line per field where `found` (at `where`) differs from what the manifest wants."""
    lines = []
    for f in fields(ServingContract):
        want, have = getattr(wanted, f.name), getattr(found, f.name)
        if want and have and want != have:
            lines.append(f"{where}: {f.name} is {have}, the manifest needs {want}")
    return lines
