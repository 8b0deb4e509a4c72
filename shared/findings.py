"""Every finding code, one enum: the stable names on the wire, and which service raises each.

A finding's code is part of the event schema's meaning (`Finding.code` in Avro), so a
value never changes once released. `python -m shared.findings` prints the README's
paragraph about them; a unit test keeps the README equal to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
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


if __name__ == "__main__":
    print(readme_block())
