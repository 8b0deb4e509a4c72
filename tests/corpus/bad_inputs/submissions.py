"""Adapter folders and AdapterTrained events from `adapter_files.yaml` and
`adapter_trained.yaml` recipes, on top of the good submission `test_ingest_validate`
makes: a tiny LoRA adapter (`tests/corpus/adapters.py`), its recipe and data scope.

An adapter_files recipe changes the folder; every key is optional:

    bad_case: NAME       the folder-level change of `bad_cases.BY_NAME[NAME]`: its `adapter`
                         arguments and its `edit` (cases that tamper with the store, the
                         manifest or the catalogue have no folder-level form)
    adapter: {...}       more `write_adapter` arguments (r, targets; `config` merges into
                         adapter_config.json)
    weights_hex: hex     adapter_model.safetensors holds exactly these bytes
    weights_header: text adapter_model.safetensors is a frame of this header text, then
    weights_data_hex: hex   these data bytes (`st_writer.frame`: no checks at all)
    write: {path: text}  write these files
    write_hex: {path: hex}  write these files' bytes
    remove: [path, ...]  delete these files
    symlink: {path: target}
    fifo: path           a named pipe
    zeros: {path: size}  files of that many zero bytes (see LIMITS)
    many_files: n        n small files under notes/
    empty: true          delete every file (the folder stays)

An adapter_trained recipe replaces fields of the event describing a good folder:
top-level fields by name; `base_model`, `recipe` and `data_scope` field by field.
In strings, `{incoming}` is ingest's allowed root and `{folder}` the good folder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shared.events import AdapterTrained
from tests.corpus import st_writer
from tests.corpus.adapters import tiny_base_spec, write_adapter
from tests.corpus.bad_cases import BY_NAME

# The bounds ingest runs with for the corpus (INGEST_* settings): `zeros` sizes rely on them.
LIMITS = {"max_file_bytes": 1 << 20, "max_total_bytes": 2 << 20, "max_files": 24}
FOLDER_KEYS = {"bad_case", "adapter", "weights_hex", "weights_header", "weights_data_hex"}
FOLDER_KEYS |= {"write", "write_hex", "remove", "symlink", "fifo", "zeros", "many_files", "empty"}
NESTED = ("base_model", "recipe", "data_scope")
WEIGHTS = "adapter_model.safetensors"


def ingest_env() -> dict[str, str]:
    return {f"INGEST_{k.upper()}": str(v) for k, v in LIMITS.items()}


def _folder_case(recipe: Mapping[str, Any]) -> tuple[dict[str, Any], Callable[[Path], None]]:
    name = recipe.get("bad_case")
    if name is None:
        return {}, lambda folder: None
    args = dict(BY_NAME[name].stage_args)
    unusable = set(args) - {"adapter", "edit"}
    if unusable:
        raise ValueError(f"bad case {name} changes {sorted(unusable)}, not the folder")
    return dict(args.get("adapter", {})), args.get("edit") or (lambda folder: None)


def write_adapter_folder(folder: Path, recipe: Mapping[str, Any]) -> None:
    """The adapter files before submission: the recipe's `bad_case` and `adapter` parts."""
    unknown = set(recipe) - FOLDER_KEYS
    if unknown:
        raise ValueError(f"unknown adapter_files recipe keys {sorted(unknown)}")
    adapter, _ = _folder_case(recipe)
    write_adapter(folder, tiny_base_spec(), **{**adapter, **recipe.get("adapter", {})})


def change_folder(folder: Path, recipe: Mapping[str, Any]) -> None:
    """What the recipe does to the folder after it was described and before ingest reads it."""
    _, edit = _folder_case(recipe)
    edit(folder)
    if "weights_hex" in recipe:
        (folder / WEIGHTS).write_bytes(bytes.fromhex(recipe["weights_hex"]))
    if "weights_header" in recipe:
        data = bytes.fromhex(recipe.get("weights_data_hex", ""))
        (folder / WEIGHTS).write_bytes(st_writer.frame(recipe["weights_header"].encode(), data))
    for path, text in recipe.get("write", {}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    for path, data in recipe.get("write_hex", {}).items():
        (folder / path).write_bytes(bytes.fromhex(data))
    for path in recipe.get("remove", ()):
        (folder / path).unlink()
    for path, target in recipe.get("symlink", {}).items():
        (folder / path).symlink_to(target)
    if "fifo" in recipe:
        os.mkfifo(folder / recipe["fifo"])
    for path, size in recipe.get("zeros", {}).items():
        with (folder / path).open("wb") as f:
            f.truncate(int(size))
    if recipe.get("many_files"):
        (folder / "notes").mkdir()
        for i in range(int(recipe["many_files"])):
            (folder / "notes" / f"note-{i:03d}.txt").write_text(f"note {i}\n")
    if recipe.get("empty"):
        for path in sorted(folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()


def _text(value: Any, places: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in places.items():
            value = value.replace("{" + name + "}", replacement)
    return value


def with_fields(
    event: AdapterTrained, changes: Mapping[str, Any], places: Mapping[str, str]
) -> AdapterTrained:
    """`event` with the recipe's fields replaced (placeholders filled in)."""
    top: dict[str, Any] = {}
    for name, value in changes.items():
        if name in NESTED:
            nested = {k: _text(v, places) for k, v in value.items()}
            top[name] = dataclasses.replace(getattr(event, name), **nested)
        else:
            top[name] = _text(value, places)
    return dataclasses.replace(event, **top)
