"""Recipe and data scope, flattened to readable rows and diffed against the serving
revision's, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from services.approval.comparison import compare_scopes, diff_fields, flatten
from services.approval.views import FieldDiff


@pytest.mark.parametrize(
    ("values", "rows"),
    [
        ({"seed": 7}, {"seed": ("7",)}),
        (
            {"lr": 0.0002, "on": True, "none": None},
            {"lr": ("0.0002",), "on": ("true",), "none": ("null",)},
        ),
        ({"dataset_ids": ["tickets-q3", "faq"]}, {"dataset_ids": ("tickets-q3", "faq")}),
        ({"dataset_ids": []}, {"dataset_ids": ()}),
        (
            {"hyperparameters": {"lr": "2e-4", "epochs": "3"}},
            {"hyperparameters.lr": ("2e-4",), "hyperparameters.epochs": ("3",)},
        ),
        ({"hyperparameters": {}}, {"hyperparameters": ()}),
        ({"a": {"b": {"c": [1, {"d": 2}]}}}, {"a.b.c": ("1", '{"d": 2}')}),
        ({"note": "two words"}, {"note": ("two words",)}),
    ],
)
def test_values_flatten_to_dotted_rows_of_items_as_written(
    values: dict[str, Any], rows: dict[str, tuple[str, ...]]
) -> None:
    assert flatten(values) == rows


@pytest.mark.parametrize(
    ("serving", "candidate", "expected"),
    [
        # same on both sides: not changed
        ({"seed": ("7",)}, {"seed": ("7",)}, [("seed", ["7"], ["7"], False)]),
        # a value differs
        ({"seed": ("7",)}, {"seed": ("11",)}, [("seed", ["7"], ["11"], True)]),
        # the order of a list's items is part of its value
        ({"ids": ("a", "b")}, {"ids": ("b", "a")}, [("ids", ["a", "b"], ["b", "a"], True)]),
        # a key on one side only, the candidate's keys first
        (
            {"old": ("1",), "seed": ("7",)},
            {"seed": ("7",), "new": ("2",)},
            [
                ("seed", ["7"], ["7"], False),
                ("new", None, ["2"], True),
                ("old", ["1"], None, True),
            ],
        ),
        # no serving revision: nothing differs, since there is nothing to differ from
        (None, {"seed": ("7",)}, [("seed", None, ["7"], False)]),
    ],
)
def test_fields_are_marked_changed_only_against_a_serving_revision(
    serving: dict[str, tuple[str, ...]] | None,
    candidate: dict[str, tuple[str, ...]],
    expected: list[tuple[str, list[str] | None, list[str] | None, bool]],
) -> None:
    assert diff_fields(serving, candidate) == [
        FieldDiff(key=k, serving=s, candidate=c, changed=changed) for k, s, c, changed in expected
    ]


def test_recipe_rows_come_before_data_scope_rows_on_both_sides() -> None:
    serving = ({"seed": 7, "evaluation_summary": {"train_loss": 0.41}}, {"corpora": ["faq"]})
    candidate = ({"seed": 7, "evaluation_summary": {"train_loss": 0.38}}, {"corpora": ["faq"]})
    rows = compare_scopes(serving, candidate)
    assert [(r.key, r.changed) for r in rows] == [
        ("recipe.seed", False),
        ("recipe.evaluation_summary.train_loss", True),
        ("data_scope.corpora", False),
    ]
    assert rows[1].serving == ["0.41"] and rows[1].candidate == ["0.38"]
    assert [r.serving for r in compare_scopes(None, candidate)] == [None, None, None]
