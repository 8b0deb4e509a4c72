"""`adapterctl` invocations from `cli.yaml` recipes.

    args: [...]          the arguments after `adapterctl` (placeholders filled in)
    env: {NAME: value}   environment variables to set for this run
    files: {path: text}  files written under {scratch} before the run

Placeholders: `{scratch}` (an empty folder of this entry's own), `{base_folder}` (the
registered base model's folder), `{base}` (its MODEL@REVISION), `{environment}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEYS = {"args", "env", "files"}


@dataclass(frozen=True)
class Command:
    args: list[str]
    env: dict[str, str]


def _fill(text: str, places: Mapping[str, str]) -> str:
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def prepare_command(recipe: Mapping[str, Any], scratch: Path, places: Mapping[str, str]) -> Command:
    """Write the recipe's files under `scratch`; the arguments and environment to run."""
    unknown = set(recipe) - KEYS
    if unknown:
        raise ValueError(f"unknown cli recipe keys {sorted(unknown)}")
    scratch.mkdir(parents=True, exist_ok=True)
    for path, text in recipe.get("files", {}).items():
        (scratch / path).write_text(text)
    places = {**places, "scratch": str(scratch)}
    args = [_fill(str(a), places) for a in recipe.get("args", [])]
    env = {k: _fill(str(v), places) for k, v in recipe.get("env", {}).items()}
    return Command(args, env)
