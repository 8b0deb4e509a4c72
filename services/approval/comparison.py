"""The candidate's recipe and data scope beside the serving revision's, field by field.

A nested recipe (`hyperparameters`, `evaluation_summary`) reads as dotted rows
(`hyperparameters.lr`), a list as its items, each value as it was written (no JSON quotes,
no Python repr), so the page can set every item on one line and wrap only between items.
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.approval.views import FieldDiff

Items = tuple[str, ...]


def item_text(value: Any) -> str:
    """One scalar as it was written: strings bare, numbers and booleans as JSON has them."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Items]:
    """Dotted keys to each value's items, in the mapping's own order."""
    rows: dict[str, Items] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple):
            rows[name] = tuple(item_text(v) for v in value)
        elif isinstance(value, Mapping):
            rows[name] = ()
        else:
            rows[name] = (item_text(value),)
    return rows


def diff_fields(
    serving: Mapping[str, Items] | None, candidate: Mapping[str, Items]
) -> list[FieldDiff]:
    """One row per key of either side, the candidate's order first; `changed` where both
    sides are known and differ, or the key is on one side only. With no serving revision,
    nothing is changed: there is nothing to differ from."""
    keys = list(candidate) + [k for k in (serving or {}) if k not in candidate]
    rows = []
    for key in keys:
        before = None if serving is None else serving.get(key)
        after = candidate.get(key)
        rows.append(
            FieldDiff(
                key=key,
                serving=list(before) if before is not None else None,
                candidate=list(after) if after is not None else None,
                changed=serving is not None and before != after,
            )
        )
    return rows


def compare_scopes(
    serving: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
    candidate: tuple[Mapping[str, Any], Mapping[str, Any]],
) -> list[FieldDiff]:
    """(recipe, data scope) of each side as rows: `recipe.*`, then `data_scope.*`."""
    rows = []
    for index, prefix in enumerate(("recipe.", "data_scope.")):
        before = flatten(serving[index], prefix) if serving is not None else None
        rows += diff_fields(before, flatten(candidate[index], prefix))
    return rows
