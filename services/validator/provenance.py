"""What the manifest claims about the revision's origin: its base, tokenizer, recipe, data.

A claim is checked against what can be seen: the catalogue's base model, the tokenizer
and template files the revision ships, and the recipe and data scope an auditor needs
to reproduce the run and review its data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.validator.findings import error, warning
from shared.catalogue import BaseModelSpec
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.hf_folder import NO_TEMPLATE
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


@dataclass(frozen=True, slots=True)
class TokenizerFacts:
    """What a tokenizer's files say about it, enough to tell a person what differs.

    `vocab_size` is one past the highest token id (vocabulary and added tokens);
    `added_tokens` the added tokens as (id, text), from tokenizer.json's `added_tokens`,
    tokenizer_config.json's `added_tokens_decoder` and added_tokens.json.
    """

    vocab_size: int | None
    added_tokens: tuple[tuple[int, str], ...] = ()


def check_shipped_tokenizer(
    manifest: Manifest,
    shipped_hash: str | None,
    shipped: TokenizerFacts | None = None,
    base: BaseModelSpec | None = None,
    reference: TokenizerFacts | None = None,
) -> list[Finding]:
    """Tokenizer files inside the revision must be the tokenizer the manifest declares.

    The message says what differs as far as can be seen: against the base's own tokenizer
    files (`reference`) when the caller has them, else against the base's vocabulary size.
    """
    if shipped_hash is None or shipped_hash == manifest.tokenizer_hash:
        return []
    differs = _tokenizer_difference(shipped, base, reference)
    return [
        error(
            FindingCode.TOKENIZER_MISMATCH,
            "the tokenizer files shipped in the revision are not the declared tokenizer "
            f"(revision {manifest.tokenizer_revision}){': ' + differs if differs else ''}; "
            "ship the base's tokenizer files unchanged, or none",
            source="shipped_files",
            expected=manifest.tokenizer_hash,
            found=shipped_hash,
            **({"differs": differs} if differs else {}),
        )
    ]


def _tokenizer_difference(
    shipped: TokenizerFacts | None, base: BaseModelSpec | None, reference: TokenizerFacts | None
) -> str:
    if shipped is None or shipped.vocab_size is None:
        return ""
    if reference is not None and reference.vocab_size is not None:
        ours, theirs = dict(shipped.added_tokens), dict(reference.added_tokens)
        only_shipped = sorted(set(ours.values()) - set(theirs.values()))
        only_base = sorted(set(theirs.values()) - set(ours.values()))
        parts = [f"vocabulary size {shipped.vocab_size} shipped, {reference.vocab_size} in base"]
        if only_shipped:
            parts.append(f"added tokens only in the shipped tokenizer: {_listed(only_shipped)}")
        if only_base:
            parts.append(f"added tokens only in the base's tokenizer: {_listed(only_base)}")
        return "; ".join(parts)
    if base is None:
        return f"the shipped tokenizer has {shipped.vocab_size} tokens"
    beyond = sorted(text for i, text in shipped.added_tokens if i >= base.vocab_size)
    if shipped.vocab_size == base.vocab_size:
        return (
            f"both it and base {base.model_id} have {base.vocab_size} tokens, so tokens or "
            "settings were changed rather than added"
        )
    extra = f"; tokens beyond the base's vocabulary: {_listed(beyond)}" if beyond else ""
    return (
        f"the shipped tokenizer has {shipped.vocab_size} tokens, base {base.model_id} "
        f"has {base.vocab_size}{extra}"
    )


def _listed(texts: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(t[:40]) for t in texts[:limit])
    return shown + (f" and {len(texts) - limit} more" if len(texts) > limit else "")


def check_shipped_template(
    manifest: Manifest,
    shipped_hash: str | None,
    shipped_text: str | None = None,
    reference_text: str | None = None,
) -> list[Finding]:
    """The shipped chat template must be the declared one; where the declared text is at
    hand (`reference_text`, the base's template of the declared hash), the message shows
    the first line that differs."""
    if shipped_hash is None or shipped_hash == manifest.chat_template_hash:
        return []
    where = ""
    if shipped_hash == NO_TEMPLATE:
        where = ": the revision ships no chat template but one is declared"
    elif manifest.chat_template_hash == NO_TEMPLATE:
        where = ": the revision ships a chat template but none is declared"
    elif shipped_text is not None and reference_text is not None:
        line, declared, found = first_difference(reference_text, shipped_text)
        where = f": first difference on line {line}, declared {declared!r}, shipped {found!r}"
    elif shipped_text is not None:
        lines = shipped_text.splitlines() or [""]
        where = (
            f": the shipped one ({len(lines)} lines) begins {lines[0][:CONTEXT]!r}; "
            "compare it with the base's template"
        )
    return [
        error(
            FindingCode.CHAT_TEMPLATE_MISMATCH,
            f"the chat template shipped in the revision is not the declared one{where}; "
            "ship the base's template unchanged, or none",
            source="shipped_files",
            expected=manifest.chat_template_hash,
            found=shipped_hash,
        )
    ]


CONTEXT = 20


def first_difference(expected: str, found: str) -> tuple[int, str, str]:
    """The first differing line (1-based) and up to `CONTEXT` characters of each side,
    from a little before the first differing character."""
    ours, theirs = expected.splitlines(), found.splitlines()
    for number, (a, b) in enumerate(zip(ours, theirs, strict=False), start=1):
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
            start = max(0, (min(len(a), len(b)) if at is None else at) - CONTEXT // 2)
            return number, a[start : start + CONTEXT], b[start : start + CONTEXT]
    number = min(len(ours), len(theirs)) + 1
    longer = ours if len(ours) > len(theirs) else theirs
    extra = longer[number - 1][:CONTEXT] if number <= len(longer) else ""
    if len(ours) > len(theirs):
        return number, extra, "<end of template>"
    if len(theirs) > len(ours):
        return number, "<end of template>", extra
    return number, "<same text>", "<line ends differ>"


def check_tokenizer_revision(manifest: Manifest, base: BaseModelSpec | None) -> list[Finding]:
    """The same tokenizer bytes under another revision label: recorded, not refused."""
    if (
        base is None
        or manifest.tokenizer_hash != base.tokenizer_hash
        or manifest.tokenizer_revision == base.tokenizer_revision
    ):
        return []
    return [
        warning(
            FindingCode.TOKENIZER_REVISION_MISMATCH,
            f"the manifest labels the tokenizer revision {manifest.tokenizer_revision}, base "
            f"{base.model_id} registers {base.tokenizer_revision} for the very same tokenizer "
            "bytes; correct the label in the training run's metadata",
            expected=base.tokenizer_revision,
            found=manifest.tokenizer_revision,
            tokenizer_hash=manifest.tokenizer_hash,
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
