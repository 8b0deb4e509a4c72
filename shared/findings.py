"""Every finding code, one enum: the stable names on the wire, and which service raises each.

A finding's code is part of the event schema's meaning (`Finding.code` in Avro), so a
value never changes once released. Each code has a one-line meaning and the fix a
submitter can act on (`GUIDANCE`, `fix_for`). `python -m shared.findings` prints the
README's paragraph about them and `python -m shared.findings --write docs/findings.md`
writes the finding-code reference; unit tests keep both equal to this module.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType


class FindingCode(StrEnum):
    # ingest: the artifact cannot be stored
    UNSUPPORTED_URI = "unsupported_uri"
    PATH_NOT_ABSOLUTE = "path_not_absolute"
    PATH_ESCAPES_ROOT = "path_escapes_root"
    SYMLINK = "symlink"
    HARD_LINK = "hard_link"
    UNEXPECTED_OWNER = "unexpected_owner"
    SOURCE_MISSING = "source_missing"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    FILE_TOO_LARGE = "file_too_large"
    TOO_MANY_FILES = "too_many_files"
    ARTIFACT_TOO_LARGE = "artifact_too_large"
    SOURCE_EMPTY = "source_empty"
    SOURCE_CHANGED = "source_changed"
    # validator: the stored revision (services/validator/checks.py says when each is raised)
    MANIFEST_UNREADABLE = "manifest_unreadable"
    MANIFEST_MISMATCH = "manifest_mismatch"
    FILE_MISSING = "file_missing"
    HASH_MISMATCH = "hash_mismatch"
    UNSAFE_FORMAT = "unsafe_format"
    PICKLE_DETECTED = "pickle_detected"
    HEADER_TOO_LARGE = "header_too_large"
    TRUNCATED = "truncated"
    MALFORMED_HEADER = "malformed_header"
    NO_WEIGHTS = "no_weights"
    ADAPTER_CONFIG_MISSING = "adapter_config_missing"
    ADAPTER_CONFIG_INVALID = "adapter_config_invalid"
    UNKNOWN_TARGET_MODULE = "unknown_target_module"
    TARGET_MODULES_MISMATCH = "target_modules_mismatch"
    UNEXPECTED_TENSOR = "unexpected_tensor"
    LORA_PAIR_INCOMPLETE = "lora_pair_incomplete"
    LORA_SHAPE_MISMATCH = "lora_shape_mismatch"
    RANK_MISMATCH = "rank_mismatch"
    TARGET_WITHOUT_TENSORS = "target_without_tensors"
    NON_FINITE_VALUES = "non_finite_values"
    DTYPE_NOT_SERVED = "dtype_not_served"
    EXECUTABLE_CONTENT = "executable_content"
    UNEXPECTED_FILE = "unexpected_file"
    DECLARED_BASE_MISMATCH = "declared_base_mismatch"
    BASE_MODEL_UNKNOWN = "base_model_unknown"
    BASE_MODEL_MISMATCH = "base_model_mismatch"
    TOKENIZER_MISMATCH = "tokenizer_mismatch"
    CHAT_TEMPLATE_MISMATCH = "chat_template_mismatch"
    TOKENIZER_REVISION_MISMATCH = "tokenizer_revision_mismatch"
    QUANTIZATION_MISMATCH = "quantization_mismatch"
    UNKNOWN_ENVIRONMENT = "unknown_environment"
    NO_TARGET_ENVIRONMENTS = "no_target_environments"
    RANK_EXCEEDS_ENVIRONMENT = "rank_exceeds_environment"
    TARGET_MODULE_UNSUPPORTED = "target_module_unsupported"
    MODULES_TO_SAVE_UNSUPPORTED = "modules_to_save_unsupported"
    RECIPE_INCOMPLETE = "recipe_incomplete"
    DATA_SCOPE_INCOMPLETE = "data_scope_incomplete"
    # gpu_evaluator: a gate the candidate breaks, or a candidate that cannot run
    METRIC_MISSING = "metric_missing"
    METRIC_BELOW_THRESHOLD = "metric_below_threshold"
    METRIC_REGRESSED = "metric_regressed"
    PERFORMANCE_REGRESSED = "performance_regressed"
    NO_OP_ADAPTER = "no_op_adapter"
    STRUCTURED_OUTPUT_INVALID = "structured_output_invalid"
    ARTIFACT_UNREADABLE = "artifact_unreadable"
    ARTIFACT_CHANGED = "artifact_changed"  # stored bytes no longer hash to the manifest
    BACKEND_ERROR = "backend_error"


def _between(first: FindingCode, last: FindingCode) -> tuple[FindingCode, ...]:
    members = list(FindingCode)
    return tuple(members[members.index(first) : members.index(last) + 1])


# The service that raises each code, in the enum's order.
PRODUCERS: Mapping[str, tuple[FindingCode, ...]] = MappingProxyType(
    {
        "ingest": _between(FindingCode.UNSUPPORTED_URI, FindingCode.SOURCE_CHANGED),
        "validator": _between(FindingCode.MANIFEST_UNREADABLE, FindingCode.DATA_SCOPE_INCOMPLETE),
        "gpu_evaluator": _between(FindingCode.METRIC_MISSING, FindingCode.BACKEND_ERROR),
    }
)

README_BEGIN = "<!-- finding-codes:begin -->"
README_END = "<!-- finding-codes:end -->"


def describe_codes() -> str:
    """The README's paragraph: how many codes there are and which service raises which."""
    lines = [
        f"{len(FindingCode)} finding codes, one `FindingCode` enum in `shared/findings.py` "
        "(`python -m shared.findings` prints this list):",
        "",
    ]
    for producer, codes in PRODUCERS.items():
        names = ", ".join(f"`{code.value}`" for code in codes)
        lines.append(f"- `{producer}` ({len(codes)}): {names}")
    return "\n".join(lines)


def readme_block() -> str:
    """`describe_codes()` between the markers, as the README holds it."""
    return f"{README_BEGIN}\n{describe_codes()}\n{README_END}"


@dataclass(frozen=True, slots=True)
class Guidance:
    """What a code means, in one line, and what the submitter does about it."""

    meaning: str
    fix: str


_ROOTS = "INGEST_ALLOWED_ROOTS"
_RESUBMIT = "then submit again"
G = Guidance
GUIDANCE: Mapping[FindingCode, Guidance] = MappingProxyType(
    {
        FindingCode.UNSUPPORTED_URI: G(
            "the artifact URI is neither a local path nor a file:// URI without a host",
            "submit the folder as an absolute local path (adapterctl submit FOLDER does)",
        ),
        FindingCode.PATH_NOT_ABSOLUTE: G(
            "the artifact path is relative",
            "give the folder's absolute path",
        ),
        FindingCode.PATH_ESCAPES_ROOT: G(
            f"the artifact folder is outside every allowed root ({_ROOTS}), or climbs out with ..",
            f"copy the folder under one of the allowed roots the finding lists, {_RESUBMIT}",
        ),
        FindingCode.SYMLINK: G(
            "the folder, or a file in it, is a symbolic link",
            f"replace the link with the real file (cp -L), {_RESUBMIT}",
        ),
        FindingCode.HARD_LINK: G(
            "a file has more than one hard link, so it may be a file from elsewhere",
            f"copy the file instead of linking it, {_RESUBMIT}",
        ),
        FindingCode.UNEXPECTED_OWNER: G(
            "a file belongs to another user than the allowed root (or INGEST_ALLOWED_OWNERS)",
            f"write the folder as the training cluster's user (chown), {_RESUBMIT}",
        ),
        FindingCode.SOURCE_MISSING: G(
            "there is no folder at the artifact path",
            "check the path: ingest reads it on its own host, under the allowed roots",
        ),
        FindingCode.NOT_A_REGULAR_FILE: G(
            "an entry is a device, socket or pipe, not a regular file",
            f"remove it from the folder, {_RESUBMIT}",
        ),
        FindingCode.FILE_TOO_LARGE: G(
            "one file is above INGEST_MAX_FILE_BYTES",
            "remove what is not the adapter (optimizer state, checkpoints) from the folder",
        ),
        FindingCode.TOO_MANY_FILES: G(
            "the folder holds more entries than INGEST_MAX_FILES",
            "submit only the adapter's files (config, weights, tokenizer, recipe, data scope)",
        ),
        FindingCode.ARTIFACT_TOO_LARGE: G(
            "the folder holds more bytes than INGEST_MAX_TOTAL_BYTES",
            "remove what is not the adapter (optimizer state, checkpoints) from the folder",
        ),
        FindingCode.SOURCE_EMPTY: G(
            "the folder holds no files",
            "point at the folder training wrote the adapter into",
        ),
        FindingCode.SOURCE_CHANGED: G(
            "a file changed size while ingest copied it",
            "submit only once training has finished writing the folder",
        ),
        FindingCode.MANIFEST_UNREADABLE: G(
            "the stored manifest cannot be read",
            "not the submitter's doing: tell the operators; submitting again is safe",
        ),
        FindingCode.MANIFEST_MISMATCH: G(
            "the stored manifest names another revision than the event",
            "not the submitter's doing: tell the operators; submitting again is safe",
        ),
        FindingCode.FILE_MISSING: G(
            "a file the manifest lists is not in the artifact store",
            "not the submitter's doing: tell the operators; submitting again is safe",
        ),
        FindingCode.HASH_MISMATCH: G(
            "stored bytes differ from the manifest's sha256 or size",
            "not the submitter's doing: tell the operators; submitting again is safe",
        ),
        FindingCode.UNSAFE_FORMAT: G(
            "weights in a pickle-based format (.bin, .pt, .ckpt, ...) or bytes that sniff as one",
            "save the adapter as safetensors (save_pretrained(..., safe_serialization=True))",
        ),
        FindingCode.PICKLE_DETECTED: G(
            "a .safetensors file holds a pickle or a torch zip",
            "save the adapter as safetensors (save_pretrained(..., safe_serialization=True))",
        ),
        FindingCode.HEADER_TOO_LARGE: G(
            "a safetensors header declares a length above the bound",
            "write the file again with the safetensors library; it was not written by it",
        ),
        FindingCode.TRUNCATED: G(
            "a safetensors file is shorter than its header or its tensors' offsets",
            "copy the file again in full (the copy or the write was cut short)",
        ),
        FindingCode.MALFORMED_HEADER: G(
            "a safetensors header is not valid (not JSON, bad dtype, shape or offsets)",
            "write the file again with the safetensors library",
        ),
        FindingCode.NO_WEIGHTS: G(
            "no .safetensors file, or none holding LoRA tensors",
            "include adapter_model.safetensors as PEFT's save_pretrained writes it",
        ),
        FindingCode.ADAPTER_CONFIG_MISSING: G(
            "the folder has no adapter_config.json",
            "include adapter_config.json as PEFT's save_pretrained writes it",
        ),
        FindingCode.ADAPTER_CONFIG_INVALID: G(
            "adapter_config.json is not JSON, or not a LoRA PEFT config",
            "train a LoRA adapter (peft_type LORA) and keep the config PEFT wrote",
        ),
        FindingCode.UNKNOWN_TARGET_MODULE: G(
            "a LoRA tensor or a config target names a module the base model does not have",
            "train against the registered base (adapterctl base list) with its module names",
        ),
        FindingCode.TARGET_MODULES_MISMATCH: G(
            "LoRA tensors on a module adapter_config.json does not target",
            "keep the config and the weights from the same save_pretrained",
        ),
        FindingCode.UNEXPECTED_TENSOR: G(
            "a tensor that is neither LoRA A/B nor in modules_to_save",
            "save only the adapter (PEFT's save_pretrained), not merged or full weights",
        ),
        FindingCode.LORA_PAIR_INCOMPLETE: G(
            "a lora_A without its lora_B, or the reverse",
            "save the adapter again: every LoRA module needs both matrices",
        ),
        FindingCode.LORA_SHAPE_MISMATCH: G(
            "a LoRA matrix's shape does not fit its base module (A (r, in), B (out, r))",
            "train against the exact base revision you submit with --base",
        ),
        FindingCode.RANK_MISMATCH: G(
            "a tensor's rank differs from the config's r or rank_pattern",
            "keep the config and the weights from the same save_pretrained",
        ),
        FindingCode.TARGET_WITHOUT_TENSORS: G(
            "a targeted base module has no LoRA tensors (a warning)",
            "nothing to do if intended; else check target_modules",
        ),
        FindingCode.NON_FINITE_VALUES: G(
            "a tensor holds NaN or infinity",
            "training diverged: lower the learning rate or use a checkpoint before it did",
        ),
        FindingCode.DTYPE_NOT_SERVED: G(
            "a tensor is not BF16, F16 or F32",
            "cast the adapter to bf16 (or f16/f32) before saving",
        ),
        FindingCode.EXECUTABLE_CONTENT: G(
            "a code file (.py, .so, .sh, ...) or a config key that makes a loader import code",
            "remove code files and keys such as auto_map from the folder",
        ),
        FindingCode.UNEXPECTED_FILE: G(
            "a file that is not part of a LoRA adapter (a warning)",
            "leave out files the adapter does not need",
        ),
        FindingCode.DECLARED_BASE_MISMATCH: G(
            "adapter_config.json's base_model_name_or_path names another base than --base",
            "submit with the --base the adapter was trained on, or fix the config",
        ),
        FindingCode.BASE_MODEL_UNKNOWN: G(
            "the base model revision is not registered in the catalogue",
            "pick a registered MODEL@REVISION (adapterctl base list), or have it registered",
        ),
        FindingCode.BASE_MODEL_MISMATCH: G(
            "a target environment serves another base revision than the adapter's",
            "train on the base the environment serves, or target another environment",
        ),
        FindingCode.TOKENIZER_MISMATCH: G(
            "the tokenizer differs from the base's or the target environment's",
            "train and submit with the base's own tokenizer files (--base-folder)",
        ),
        FindingCode.CHAT_TEMPLATE_MISMATCH: G(
            "the chat template differs from the base's or the target environment's",
            "keep the base's chat template unchanged in tokenizer_config.json",
        ),
        FindingCode.TOKENIZER_REVISION_MISMATCH: G(
            "same tokenizer bytes as the base, another revision label (a warning)",
            "pass the base's tokenizer revision to --tokenizer-revision",
        ),
        FindingCode.QUANTIZATION_MISMATCH: G(
            "the base or a target environment serves another quantization profile",
            "submit with --quantization the environment serves (adapterctl env list)",
        ),
        FindingCode.UNKNOWN_ENVIRONMENT: G(
            "a target environment is not in the catalogue",
            "name a registered environment with --environment (adapterctl env list)",
        ),
        FindingCode.NO_TARGET_ENVIRONMENTS: G(
            "the submission names no environment to check against (a warning)",
            "pass --environment NAME for each environment the adapter should serve in",
        ),
        FindingCode.RANK_EXCEEDS_ENVIRONMENT: G(
            "the LoRA rank is above the environment's max_lora_rank",
            "train with r at most the environment's max rank (adapterctl env list)",
        ),
        FindingCode.TARGET_MODULE_UNSUPPORTED: G(
            "the adapter targets a module the environment cannot apply LoRA to",
            "target only the environment's supported modules (adapterctl env list --json)",
        ),
        FindingCode.MODULES_TO_SAVE_UNSUPPORTED: G(
            "modules_to_save (e.g. embed_tokens) where the environment does not allow it",
            "train without modules_to_save, or target an environment that allows it",
        ),
        FindingCode.RECIPE_INCOMPLETE: G(
            "recipe.json lacks an integer seed or dataset_ids",
            'write recipe.json with "seed" and "dataset_ids"',
        ),
        FindingCode.DATA_SCOPE_INCOMPLETE: G(
            "data_scope.json lacks corpora or a valid time window",
            'write data_scope.json with "corpora" and ISO dates for the time window',
        ),
        FindingCode.METRIC_MISSING: G(
            "the evaluation suite produced no value for a gated metric",
            "tell the operators: the suite or the backend misses the metric",
        ),
        FindingCode.METRIC_BELOW_THRESHOLD: G(
            "a gated metric is below its absolute threshold",
            "improve the adapter on that metric (data, epochs, rank) and submit again",
        ),
        FindingCode.METRIC_REGRESSED: G(
            "a gated metric regressed beyond tolerance against the active revision",
            "improve the adapter until it at least matches the active revision",
        ),
        FindingCode.PERFORMANCE_REGRESSED: G(
            "latency or throughput regressed beyond tolerance against the baseline",
            "lower the rank or the targeted modules, or ask for the budget to change",
        ),
        FindingCode.NO_OP_ADAPTER: G(
            "the adapter does not change the base model's outputs",
            "check that training updated the LoRA weights (B is not all zeros)",
        ),
        FindingCode.STRUCTURED_OUTPUT_INVALID: G(
            "outputs that must follow a format (JSON, a schema) do not",
            "train on examples of the required format and submit again",
        ),
        FindingCode.ARTIFACT_UNREADABLE: G(
            "the evaluator could not load the stored adapter",
            "not the submitter's doing: tell the operators",
        ),
        FindingCode.ARTIFACT_CHANGED: G(
            "stored bytes no longer hash to the manifest",
            "not the submitter's doing: tell the operators; submitting again is safe",
        ),
        FindingCode.BACKEND_ERROR: G(
            "the evaluation backend failed",
            "not the submitter's doing: tell the operators; evaluation is retried",
        ),
    }
)
UNKNOWN = Guidance("a code this version does not know", "see docs/findings.md of a newer version")


def guidance_for(code: str) -> Guidance:
    """The meaning and the fix of `code`; `UNKNOWN` for a code from a newer version."""
    try:
        return GUIDANCE[FindingCode(code)]
    except (ValueError, KeyError):
        return UNKNOWN


def fix_for(code: str) -> str:
    """What the submitter does about a finding with `code`."""
    return guidance_for(code).fix


REFERENCE_TITLE = "# Finding codes"


def reference() -> str:
    """docs/findings.md: every code by the service that raises it, its meaning and its fix."""
    lines = [
        REFERENCE_TITLE,
        "",
        "<!-- generated by `python -m shared.findings --write docs/findings.md`; do not edit -->",
        "",
        "Each finding on a rejected (or quarantined, or failed) revision carries one of "
        "these codes. `adapterctl submit --wait` and `adapterctl history` print the fix "
        "beside each finding.",
    ]
    for producer, codes in PRODUCERS.items():
        lines += ["", f"## {producer}", "", "| code | meaning | fix |", "|---|---|---|"]
        lines += [
            f"| `{code.value}` | {GUIDANCE[code].meaning} | {GUIDANCE[code].fix} |"
            for code in codes
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.findings",
        description="Print the README's finding-code paragraph, or write the reference.",
    )
    parser.add_argument(
        "--write", type=Path, metavar="PATH", help="write the reference (docs/findings.md)"
    )
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(reference(), encoding="utf-8")
    else:
        print(readme_block())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
