"""What the manifest claims about the revision's origin: its base, tokenizer, recipe, data.

A claim is checked against what can be seen: the catalogue's base model, the tokenizer
and template files the revision ships, and the recipe and data scope an auditor needs
to reproduce the run and review its data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.validator.findings import error
from shared.catalogue import BaseModelSpec
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.manifest import Manifest


def check_base(manifest: Manifest, base: BaseModelSpec | None) -> list[Finding]:
    claimed = f"{manifest.base_model_id}@{manifest.base_model_revision}"
    if base is None:
        return [
            error(
                FindingCode.BASE_MODEL_UNKNOWN,
                f"base model {claimed} is not in the catalogue; its modules cannot be checked",
                expected="a catalogued base model",
                found=claimed,
            )
        ]
    findings: list[Finding] = []
    described = f"{base.model_id}@{base.revision}"
    if described != claimed:
        findings.append(
            error(
                FindingCode.BASE_MODEL_MISMATCH,
                f"the manifest names {claimed} but the checks were given {described}",
                expected=claimed,
                found=described,
            )
        )
    if manifest.quantization_profile not in base.quantization_profiles:
        findings.append(
            error(
                FindingCode.QUANTIZATION_MISMATCH,
                f"trained for {manifest.quantization_profile}; base {described} exists as "
                f"{', '.join(base.quantization_profiles)}",
                expected=",".join(base.quantization_profiles),
                found=manifest.quantization_profile,
            )
        )
    return findings


def check_shipped_tokenizer(manifest: Manifest, shipped_hash: str | None) -> list[Finding]:
    """Tokenizer files inside the revision must be the tokenizer the manifest declares."""
    if shipped_hash is None or shipped_hash == manifest.tokenizer_hash:
        return []
    return [
        error(
            FindingCode.TOKENIZER_MISMATCH,
            "the tokenizer files shipped in the revision are not the declared tokenizer "
            f"(revision {manifest.tokenizer_revision})",
            source="shipped_files",
            expected=manifest.tokenizer_hash,
            found=shipped_hash,
        )
    ]


def check_shipped_template(manifest: Manifest, shipped_hash: str | None) -> list[Finding]:
    if shipped_hash is None or shipped_hash == manifest.chat_template_hash:
        return []
    return [
        error(
            FindingCode.CHAT_TEMPLATE_MISMATCH,
            "the chat template shipped in the revision is not the declared one",
            source="shipped_files",
            expected=manifest.chat_template_hash,
            found=shipped_hash,
        )
    ]


def check_recipe(recipe: Mapping[str, Any]) -> list[Finding]:
    missing = []
    seed = recipe.get("seed")
    # A negative seed is no seed: the trainer client writes -1 when recipe.json has none.
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        missing.append("seed")
    if not _non_empty_names(recipe.get("dataset_ids")):
        missing.append("dataset_ids")
    if not missing:
        return []
    return [
        error(
            FindingCode.RECIPE_INCOMPLETE,
            f"the training recipe lacks {', '.join(missing)}: the run cannot be reproduced",
            expected="seed (non-negative integer), dataset_ids (non-empty list)",
            found=",".join(f"{k}={recipe.get(k)!r}" for k in missing),
        )
    ]


def check_data_scope(scope: Mapping[str, Any]) -> list[Finding]:
    problems = []
    if not _non_empty_names(scope.get("corpora")):
        problems.append("corpora")
    start, end = scope.get("time_window_start"), scope.get("time_window_end")
    for key, value in (("time_window_start", start), ("time_window_end", end)):
        if not isinstance(value, str) or not value.strip():
            problems.append(key)
    if not problems and _ends_before_start(start, end):
        problems.append("time window (ends before it starts)")
    if not problems:
        return []
    return [
        error(
            FindingCode.DATA_SCOPE_INCOMPLETE,
            f"the data scope lacks {', '.join(problems)}: the data cannot be reviewed",
            expected="corpora (non-empty list), time_window_start <= time_window_end",
            found=", ".join(problems),
        )
    ]


def _non_empty_names(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str) and v for v in value)
    )


def _ends_before_start(start: object, end: object) -> bool:
    try:
        begins, ends = datetime.fromisoformat(str(start)), datetime.fromisoformat(str(end))
        return ends < begins
    except (ValueError, TypeError):  # free-form windows, or naive against aware: not ordered
        return False
