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

from shared.modelkit.adapters import AdapterKind, copy_as_noop, train_adapter
from shared.modelkit.base import build_base_model, copy_with_other_template
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


def version_hash(sources: Path = Path(__file__).parent) -> str:
    """Changes with the kit's source or the libraries that train it, so either rebuilds it."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.py")):
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
    try:
        staging.mkdir(parents=True)
        manifest = _build_into(staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(root, ignore_errors=True)  # an earlier build that died before its manifest
    staging.rename(root)


def _build_into(staging: Path) -> dict[str, object]:
    main = staging / "base_main"
    bases = [
        build_base_model(main, seed=SEED),
        build_base_model(staging / "base_other_tokenizer", seed=SEED, variant="other_tokenizer"),
        copy_with_other_template(main, staging / "base_other_template", seed=SEED),
    ]
    adapters = staging / "adapters"
    trained = [
        train_adapter(main, adapters / kind, kind=kind, seed=SEED)
        for kind in AdapterKind
        if kind is not AdapterKind.noop
    ]
    trained.append(copy_as_noop(adapters / "good", adapters / "noop"))
    model_ids = {b.folder.name.removeprefix("base_"): b.model_id for b in bases}
    revisions = {b.folder.name.removeprefix("base_"): b.revision for b in bases}
    revisions |= {a.kind.value: a.revision for a in trained}
    return {
        "model_ids": model_ids,
        "revisions": revisions,
        "shuffled_answers": bases[0].shuffled_answers,
    }


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
