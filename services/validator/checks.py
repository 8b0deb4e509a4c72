"""The validator's decision: every static check of one revision, as findings.

Pure: `check_revision(inputs)` reads nothing; `inputs.read_revision_inputs` does the I/O.
A finding of severity "error" rejects the revision; "warning" is recorded only. One
cause gives one finding: identical findings are given once, and a quantization profile
that neither the base nor the environments offer is one finding naming them all.

| code                        | severity | raised when
|-----------------------------|----------|------------------------------------------------------
| file_missing                | error    | a manifest file is not in the store
| hash_mismatch               | error    | stored bytes differ from the manifest's sha256/size
| unsafe_format               | error    | .bin/.pt/.pth/.pkl/.pickle/.ckpt, or bytes sniff as
|                             |          | pickle/zip whatever the name (refused unread)
| pickle_detected             | error    | a .safetensors file holds a pickle or a torch zip
| header_too_large            | error    | declared header length above the bound (length bomb)
| truncated                   | error    | file shorter than its header or its tensors' offsets
| malformed_header            | error    | header not JSON/object, bad dtype/shape/offsets, holes
| no_weights                  | error    | no .safetensors file, or readable ones without LoRA
| adapter_config_missing      | error    | no adapter_config.json
| adapter_config_invalid      | error    | not JSON, or not a LoRA PEFT config
| unknown_target_module       | error    | a LoRA tensor or a config target names no base module
| target_modules_mismatch     | error    | LoRA tensors on a module the config does not target
| unexpected_tensor           | error    | a tensor that is neither LoRA A/B nor modules_to_save
| lora_pair_incomplete        | error    | lora_A without lora_B, or the reverse
| lora_shape_mismatch         | error    | A is not (r, in) or B not (out, r) of the base module
| rank_mismatch               | error    | tensor rank differs from config r / rank_pattern
| target_without_tensors      | warning  | targeted base modules without LoRA tensors
| non_finite_values           | error    | a float tensor holds NaN or +/-inf (values scanned)
| dtype_not_served            | error    | a tensor is not BF16/F16/F32 (F64, integers, bool)
| executable_content          | error    | a code file (.py, .so, .sh, .ipynb, ...) or a JSON
|                             |          | key that makes a loader import code (auto_map, ...)
| unexpected_file             | warning  | files that are not part of a LoRA adapter
| declared_base_mismatch      | error    | adapter_config.json names another base than the manifest
| base_model_unknown          | error    | the base model is not in the catalogue
| base_model_mismatch         | error    | the base or an environment serves another base revision
| tokenizer_mismatch          | error    | shipped tokenizer or environment differs from manifest
| chat_template_mismatch      | error    | shipped template or environment differs from manifest
| tokenizer_revision_mismatch | warning  | same tokenizer bytes as the base, another revision label
| quantization_mismatch       | error    | base or environment serves another quantization profile
| unknown_environment         | error    | a target environment is not in the catalogue
| no_target_environments      | warning  | the manifest names no environment to check against
| rank_exceeds_environment    | error    | rank above the environment's max_lora_rank
| target_module_unsupported   | error    | a module the environment cannot apply LoRA to
| modules_to_save_unsupported | error    | modules_to_save (e.g. embed_tokens) where not allowed
| recipe_incomplete           | error    | recipe lacks an integer seed or dataset_ids
| data_scope_incomplete       | error    | data scope lacks corpora or a valid time window
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.validator import lora_tensors as lora
from services.validator.compatibility import AdapterProfile, check_compatibility
from services.validator.contents import (
    check_code_references,
    check_declared_base,
    check_file_kinds,
)
from services.validator.findings import error, warning
from services.validator.integrity import (
    check_file_formats,
    check_file_hashes,
    check_has_weights,
    check_headers,
)
from services.validator.peft_config import LoraConfig, config_problems
from services.validator.provenance import (
    TokenizerFacts,
    check_base,
    check_data_scope,
    check_recipe,
    check_shipped_template,
    check_shipped_tokenizer,
    check_tokenizer_revision,
)
from services.validator.values import NonFinite, check_dtypes, check_non_finite
from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.manifest import Manifest
from shared.safetensors_header import HeaderError, SafetensorsHeader, TensorInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionInputs:
    """Everything the checks look at, read once from the store and the catalogue."""

    manifest: Manifest
    actual_hashes: Mapping[str, tuple[str, int]]  # path -> (sha256 hex, size) as stored
    headers: Mapping[str, SafetensorsHeader | HeaderError]  # every .safetensors file
    sniffed: Mapping[str, str]  # path -> sniff_format of its first bytes
    adapter_config: Mapping[str, Any] | None
    adapter_config_error: str | None
    tokenizer_hash_from_files: str | None  # None when the revision ships no tokenizer
    chat_template_hash_from_files: str | None
    base: BaseModelSpec | None
    environments: Sequence[EnvironmentSpec]
    unknown_environments: Sequence[str] = ()
    # path -> tensor -> its NaN/inf counts; files not scanned are absent
    value_scans: Mapping[str, Mapping[str, NonFinite]] = field(default_factory=dict)
    json_documents: Mapping[str, Any] = field(default_factory=dict)  # path -> parsed JSON
    adapter_config_duplicates: tuple[str, ...] = ()  # keys given twice in one object
    shipped_tokenizer: TokenizerFacts | None = None
    shipped_chat_template: str | None = None
    # The base's own tokenizer files, where the caller has them: messages then say what
    # differs. The catalogue holds only their hashes, so the service passes None.
    reference_tokenizer: TokenizerFacts | None = None
    reference_chat_template: str | None = None


def check_revision(inputs: RevisionInputs) -> list[Finding]:
    manifest, base = inputs.manifest, inputs.base
    config = lora_config(inputs.adapter_config)
    tensors = lora.classify_tensors(
        adapter_tensors(inputs.headers), config.modules_to_save if config else ()
    )
    profile = adapter_profile(config, tensors)
    findings = [
        *check_file_hashes(manifest, inputs.actual_hashes),
        *check_file_formats(manifest, inputs.sniffed),
        *check_file_kinds(manifest),
        *check_code_references(inputs.json_documents),
        *check_headers(inputs.headers),
        *check_has_weights(manifest, inputs.headers, len(tensors.pairs)),
        *check_dtypes(inputs.headers),
        *check_non_finite(inputs.value_scans),
        *check_adapter_config(
            inputs.adapter_config, inputs.adapter_config_error, inputs.adapter_config_duplicates
        ),
        *check_declared_base(manifest, inputs.adapter_config),
        *lora.check_pairs_complete(tensors),
        *lora.check_no_unexpected(tensors),
        *(check_against_base(tensors, config, base) if base else []),
        *(check_against_config(tensors, config) if config else []),
        *check_base(manifest, base),
        *check_tokenizer_revision(manifest, base),
        *check_shipped_tokenizer(
            manifest,
            inputs.tokenizer_hash_from_files,
            inputs.shipped_tokenizer,
            base,
            inputs.reference_tokenizer,
        ),
        *check_shipped_template(
            manifest,
            inputs.chat_template_hash_from_files,
            inputs.shipped_chat_template,
            inputs.reference_chat_template,
        ),
        *check_recipe(manifest.recipe),
        *check_data_scope(manifest.data_scope),
        *check_environments_known(manifest, inputs.environments, inputs.unknown_environments),
        *(f for env in inputs.environments for f in check_compatibility(manifest, profile, env)),
    ]
    return once_per_cause(findings)


def once_per_cause(findings: Sequence[Finding]) -> list[Finding]:
    """Identical findings once; every `quantization_mismatch` about the manifest's one
    profile (from the base and from each environment) merged into one finding."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for f in findings:
        if (f.code, f.severity, f.message) not in seen:
            seen.add((f.code, f.severity, f.message))
            unique.append(f)
    quantization = [f for f in unique if f.code == FindingCode.QUANTIZATION_MISMATCH]
    if len(quantization) < 2:
        return unique
    merged = merge_quantization(quantization)
    at = unique.index(quantization[0])
    rest = [f for f in unique if f.code != FindingCode.QUANTIZATION_MISMATCH]
    return [*rest[:at], merged, *rest[at:]]


def merge_quantization(findings: Sequence[Finding]) -> Finding:
    found = findings[0].evidence.get("found", "")
    offered = []
    for f in findings:
        side = f"environment {f.evidence['environment']}" if "environment" in f.evidence else "base"
        offered.append(f"{side} offers {f.evidence.get('expected', '?')}")
    return error(
        FindingCode.QUANTIZATION_MISMATCH,
        f"trained for {found}, which nothing it would be served on offers: "
        f"{'; '.join(offered)}; retrain for a served profile or register that profile",
        expected="; ".join(offered),
        found=found,
        environment=",".join(
            f.evidence["environment"] for f in findings if "environment" in f.evidence
        ),
    )


def lora_config(raw: Mapping[str, Any] | None) -> LoraConfig | None:
    """The config, when it is a valid LoRA config; other checks then rely on it."""
    if raw is None or config_problems(raw):
        return None
    return LoraConfig.from_mapping(raw)


def adapter_tensors(
    headers: Mapping[str, SafetensorsHeader | HeaderError],
) -> dict[str, TensorInfo]:
    return {
        name: info
        for header in headers.values()
        if isinstance(header, SafetensorsHeader)
        for name, info in header.tensors.items()
    }


def adapter_profile(config: LoraConfig | None, tensors: lora.AdapterTensors) -> AdapterProfile:
    ranks = (*(config.ranks if config else ()), *tensors.ranks)
    modules = {m.rsplit(".", 1)[-1] for m in (*tensors.pairs, *_targets(config))}
    saved = {m.rsplit(".", 1)[-1] for m in (*tensors.saved_modules, *_saved(config))}
    return AdapterProfile(
        max_rank=max(ranks, default=0),
        module_names=frozenset(modules),
        saved_modules=tuple(sorted(saved)),
    )


def check_adapter_config(
    raw: Mapping[str, Any] | None, read_error: str | None, duplicate_keys: Sequence[str] = ()
) -> list[Finding]:
    if read_error is not None:
        return [
            error(
                FindingCode.ADAPTER_CONFIG_INVALID,
                f"adapter_config.json is unreadable: {read_error}",
                path="adapter_config.json",
                found=read_error,
            )
        ]
    if raw is None:
        return [
            error(
                FindingCode.ADAPTER_CONFIG_MISSING,
                "the revision has no adapter_config.json",
                expected="adapter_config.json",
            )
        ]
    duplicated = (
        [
            f"key(s) {', '.join(map(repr, duplicate_keys))} appear twice in one object; "
            "readers disagree on which value wins: keep one"
        ]
        if duplicate_keys
        else []
    )
    return [
        error(
            FindingCode.ADAPTER_CONFIG_INVALID,
            f"adapter_config.json is not a LoRA config: {problem}",
            path="adapter_config.json",
            found=problem,
        )
        for problem in [*duplicated, *config_problems(raw)]
    ]


def check_against_base(
    tensors: lora.AdapterTensors, config: LoraConfig | None, base: BaseModelSpec
) -> list[Finding]:
    return [
        *lora.check_modules_exist(tensors, base),
        *lora.check_shapes(tensors, base),
        *(lora.check_config_targets_exist(config, base) if config else []),
        *(lora.check_targets_have_tensors(tensors, config, base) if config else []),
    ]


def check_against_config(tensors: lora.AdapterTensors, config: LoraConfig) -> list[Finding]:
    return [*lora.check_ranks(tensors, config), *lora.check_tensors_targeted(tensors, config)]


def check_environments_known(
    manifest: Manifest, environments: Sequence[EnvironmentSpec], unknown: Sequence[str]
) -> list[Finding]:
    findings = [
        error(
            FindingCode.UNKNOWN_ENVIRONMENT,
            f"target environment {name!r} is not in the catalogue",
            environment=name,
        )
        for name in unknown
    ]
    if not environments and not unknown:
        findings.append(
            warning(
                FindingCode.NO_TARGET_ENVIRONMENTS,
                "the manifest names no target environment; nothing was checked for serving",
                found=",".join(manifest.target_environments) or "none",
            )
        )
    return findings


def _targets(config: LoraConfig | None) -> tuple[str, ...]:
    return config.target_names if config else ()


def _saved(config: LoraConfig | None) -> tuple[str, ...]:
    return config.modules_to_save if config else ()
