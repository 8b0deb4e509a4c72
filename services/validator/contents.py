"""What the revision's files are: only what an adapter needs, no code, and the base it names.

A LoRA revision is weights, a PEFT config, optionally the tokenizer it was trained with,
and a little metadata. Anything executable (a `.py` file, a shared object, a notebook) is
refused: `trust_remote_code` would import it, and no reviewer reads it. So is a config
that points a loader at custom code (`auto_map`, `trust_remote_code: true`, ...): the
code is fetched from elsewhere at load time. Other unknown files are recorded only.

`adapter_config.json`'s `base_model_name_or_path` is what PEFT loads the adapter onto
when nobody says otherwise; it must be the base the manifest registers. A Hugging Face
id (`org/name`) is compared exactly (surrounding blanks stripped; ids are
case-sensitive). A local path (absolute, `./`, `~`, or more than one `/`) cannot be
resolved here: it matches when its last component is the id's last component. The
config's `revision` is compared only when it is a full 40-hex commit: a branch or tag
names no fixed revision. An empty or absent value gives no finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import Any

from services.validator.findings import error, warning
from services.validator.integrity import UNSAFE_SUFFIXES
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.manifest import Manifest

# The files a revision may hold, by name (`fnmatch` patterns, matched on the file name).
ALLOWED_NAMES = (
    "adapter_config.json",
    "*.safetensors",
    # the tokenizer the adapter was trained with, as `save_pretrained` writes it
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
    # what the training run writes beside the adapter (shared/trainer_client.py)
    "recipe.json",
    "data_scope.json",
    "training_args.json",
    "trainer_state.json",
    "*results.json",
    "README.md",
    "LICENSE*",
    ".gitattributes",
)
EXECUTABLE_SUFFIXES = (
    ".py",
    ".pyc",
    ".pyo",
    ".pyd",
    ".so",
    ".dylib",
    ".dll",
    ".exe",
    ".sh",
    ".bash",
    ".bat",
    ".cmd",
    ".ps1",
    ".ipynb",
    ".jar",
    ".js",
)
# Keys by which a Hugging Face config makes a loader import code: `auto_map` (config,
# tokenizer), PEFT's `auto_mapping`, `custom_pipelines`; and the switch that allows it.
CODE_KEYS = ("auto_map", "auto_mapping", "custom_pipelines")
TRUST_KEY = "trust_remote_code"
MAX_DEPTH = 64  # nesting walked in a JSON document; deeper is not a config
LISTED = 10
COMMIT = re.compile(r"[0-9a-f]{40}")


def check_file_kinds(manifest: Manifest) -> list[Finding]:
    """Executable files are refused one by one; other unknown files listed in one warning."""
    findings: list[Finding] = []
    unknown: list[str] = []
    for entry in manifest.files:
        name = PurePosixPath(entry.path).name
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in EXECUTABLE_SUFFIXES:
            findings.append(
                error(
                    FindingCode.EXECUTABLE_CONTENT,
                    f"{entry.path} is code ({suffix}); an adapter revision holds weights, "
                    "its config and tokenizer files only: remove it",
                    path=entry.path,
                    found=suffix,
                )
            )
        elif suffix not in UNSAFE_SUFFIXES and not any(fnmatch(name, p) for p in ALLOWED_NAMES):
            unknown.append(entry.path)  # unsafe suffixes are `unsafe_format` already
    if unknown:
        listed = ", ".join(unknown[:LISTED])
        more = f" and {len(unknown) - LISTED} more" if len(unknown) > LISTED else ""
        findings.append(
            warning(
                FindingCode.UNEXPECTED_FILE,
                f"{len(unknown)} file(s) are not part of a LoRA adapter and are never loaded: "
                f"{listed}{more}; leave them out of the revision",
                found=",".join(unknown[:LISTED]),
                count=len(unknown),
            )
        )
    return findings


def check_code_references(documents: Mapping[str, Any]) -> list[Finding]:
    """Each JSON file that makes a loader import code, naming the file and the key."""
    findings = []
    for path, body in sorted(documents.items()):
        for where, key in sorted(set(_code_keys(body, "", 0))):
            findings.append(
                error(
                    FindingCode.EXECUTABLE_CONTENT,
                    f"{path} sets {where or key!r}, which makes a loader import custom code; "
                    "remove the key: only built-in architectures and tokenizers are served",
                    path=path,
                    key=where or key,
                )
            )
    return findings


def _code_keys(value: object, where: str, depth: int) -> Iterator[tuple[str, str]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if (key in CODE_KEYS and _imports_code(key, item)) or (
                key == TRUST_KEY and item is True
            ):
                yield path, str(key)
            else:
                yield from _code_keys(item, path, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _code_keys(item, f"{where}[{i}]", depth + 1)


def _imports_code(key: str, value: object) -> bool:
    """PEFT writes `auto_mapping` naming the base's class and library for a model without
    a task type; a class of `transformers` itself imports no foreign code."""
    if key == "auto_mapping" and isinstance(value, Mapping):
        return not str(value.get("parent_library", "")).startswith("transformers.")
    return bool(value)


def check_declared_base(manifest: Manifest, config: Mapping[str, Any] | None) -> list[Finding]:
    """adapter_config.json's base (and pinned revision) must be the manifest's base."""
    if config is None:
        return []
    declared = config.get("base_model_name_or_path")
    name = declared.strip() if isinstance(declared, str) else ""
    raw_revision = config.get("revision")
    revision = raw_revision.strip() if isinstance(raw_revision, str) else ""
    name_differs = bool(name) and not _same_base(name, manifest.base_model_id)
    revision_differs = bool(COMMIT.fullmatch(revision)) and revision != manifest.base_model_revision
    if not (name_differs or revision_differs):
        return []
    says = f"{name or '-'}@{revision or '-'}"
    registered = f"{manifest.base_model_id}@{manifest.base_model_revision}"
    return [
        error(
            FindingCode.DECLARED_BASE_MISMATCH,
            f"adapter_config.json says the base is {says}, the manifest says {registered}; "
            "PEFT would load the adapter onto the config's base: set base_model_name_or_path "
            "(and revision) to the base the adapter was trained on, or register that base",
            path="adapter_config.json",
            expected=registered,
            found=says,
        )
    ]


def _same_base(declared: str, model_id: str) -> bool:
    """The same model when the names are equal or end in the same repository name: a
    local path or an internal mirror (`/models/x`, `mirror-org/x`) of the registered `org/x`
    names it, another model's name does not."""
    if declared == model_id.strip():
        return True
    name = PurePosixPath(declared.rstrip("/")).name if _is_local_path(declared) else declared
    return name.rsplit("/", 1)[-1].casefold() == model_id.strip().rsplit("/", 1)[-1].casefold()


def _is_local_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name
