"""The kit built once per source version into a cache folder, safely under parallel workers."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from shared.modelkit.adapters import AdapterKind, train_adapter
from shared.modelkit.base import BaseVariant, build_base_model
from shared.modelkit.facts import FACTS, Fact

MANIFEST = "kit.json"  # written last: its presence means the build completed
LIBRARIES = ("torch", "transformers", "peft", "tokenizers", "safetensors")
SEED = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Kit:
    root: Path
    base: Path
    base_other_tokenizer: Path
    base_other_template: Path
    good: Path
    shuffled: Path
    noop: Path
    json: Path
    badjson: Path
    facts: tuple[Fact, ...]
    shuffled_answers: tuple[str, ...]  # what the base believes, index for index with facts
    model_ids: dict[str, str]  # base variant -> model id
    revisions: dict[str, str]  # base variant or adapter kind -> content digest

    def adapter(self, kind: str) -> Path:
        return self.root / "adapters" / AdapterKind(kind).value


def kit(root: Path | None = None) -> Kit:
    """The kit under `root` (default: the repository's cache), built first if it is not there."""
    root = root or default_root()
    if not (root / MANIFEST).is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        with _locked(root.parent / f"{root.name}.lock"):
            if not (root / MANIFEST).is_file():
                _build(root)
    return _read(root)


def default_root() -> Path:
    repo = Path(__file__).resolve().parents[2]
    cache = repo / ".cache" if (repo / "pyproject.toml").is_file() else Path.home() / ".cache"
    return cache / "modelkit" / version_hash()


def version_hash() -> str:
    """Changes with the kit's source or the libraries that train it, so either rebuilds it."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in LIBRARIES:
        digest.update(f"{name}=={metadata.version(name)}\0".encode())
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(root: Path) -> None:
    staging = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    model_ids: dict[str, str] = {}
    revisions: dict[str, str] = {}
    shuffled: tuple[str, ...] = ()
    for variant in BaseVariant:
        info = build_base_model(staging / f"base_{variant.value}", seed=SEED, variant=variant)
        model_ids[variant.value], revisions[variant.value] = info.model_id, info.revision
        shuffled = shuffled or info.shuffled_answers
    for kind in AdapterKind:
        out = staging / "adapters" / kind.value
        made = train_adapter(staging / "base_main", out, kind=kind, seed=SEED)
        revisions[kind.value] = made.revision
    manifest = {"model_ids": model_ids, "revisions": revisions, "shuffled_answers": shuffled}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(root, ignore_errors=True)  # an earlier build that died before its manifest
    staging.rename(root)


def _read(root: Path) -> Kit:
    manifest = json.loads((root / MANIFEST).read_text())
    adapters = root / "adapters"
    return Kit(
        root=root,
        base=root / "base_main",
        base_other_tokenizer=root / "base_other_tokenizer",
        base_other_template=root / "base_other_template",
        good=adapters / "good",
        shuffled=adapters / "shuffled",
        noop=adapters / "noop",
        json=adapters / "json",
        badjson=adapters / "badjson",
        facts=FACTS,
        shuffled_answers=tuple(manifest["shuffled_answers"]),
        model_ids=dict(manifest["model_ids"]),
        revisions=dict(manifest["revisions"]),
    )
