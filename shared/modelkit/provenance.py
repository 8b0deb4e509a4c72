"""What a trained adapter folder says about its training: recipe.json and data_scope.json.

These are the files the project's submit client reads (`shared.trainer_client`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA_WINDOW = ("2026-01-01", "2026-01-31")
FILTERING_RULES = ("synthetic-only", "no-personal-data")


def make_recipe(
    dataset: str, seed: int, hyperparameters: dict[str, Any], loss: float
) -> dict[str, Any]:
    """Enough to reproduce the run, plus its final training loss."""
    return {
        "seed": seed,
        "dataset_ids": [f"modelkit-{dataset}-v1"],
        "hyperparameters": hyperparameters,
        "evaluation_summary": {"train_loss": round(loss, 6)},
    }


def write_provenance(folder: Path, written: dict[str, Any]) -> None:
    """recipe.json as given and data_scope.json derived from its dataset ids."""
    scope = {
        "corpora": [d.removesuffix("-v1") for d in written["dataset_ids"]],
        "time_window_start": DATA_WINDOW[0],
        "time_window_end": DATA_WINDOW[1],
        "filtering_rules": list(FILTERING_RULES),
    }
    _write_json(folder / "recipe.json", written)
    _write_json(folder / "data_scope.json", scope)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
