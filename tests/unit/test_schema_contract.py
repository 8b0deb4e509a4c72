"""The contract between `schemas/` and `shared.events`: field for field, and evolving safely."""

from __future__ import annotations

import dataclasses
import types
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest

from shared.events import ALL_EVENTS, BY_SCHEMA
from shared.schemas import SchemaCatalogue, compatibility_problems

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "data" / "golden"
REQUIRED = "<no default>"
PRIMITIVES = {str: "string", int: "long", float: "double", bool: "boolean"}
CATALOGUE = SchemaCatalogue.load()  # reading local files at collection keeps ids readable


def shape_of_hint(hint: Any) -> Any:
    """The Avro type a dataclass annotation should map to, in a comparable shape."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return ["null", shape_of_hint(inner)]
    if origin is list:
        return {"array": shape_of_hint(args[0])}
    if origin is dict:
        assert args[0] is str, f"Avro map keys are strings, not {args[0]}"
        return {"map": shape_of_hint(args[1])}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return {"record": hint.__name__, "fields": fields_of_class(hint)}
    if hint is datetime:
        return "timestamp-micros"
    return PRIMITIVES[hint]


def fields_of_class(cls: Any) -> list[tuple[str, Any, Any]]:
    hints = get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = REQUIRED if f.default is dataclasses.MISSING else f.default
        rows.append((f.name, shape_of_hint(hints[f.name]), default))
    return rows


def shape_of_avro(schema: Any, named: dict[str, Any]) -> Any:
    """The same shape read from a raw schema; `named` resolves references to earlier records."""
    if isinstance(schema, list):
        return [shape_of_avro(branch, named) for branch in schema]
    if isinstance(schema, str):
        return named.get(schema, schema)
    kind = schema["type"]
    if kind == "record":
        shape = {"record": schema["name"], "fields": fields_of_record(schema, named)}
        named[schema["name"]] = shape
        return shape
    if kind == "array":
        return {"array": shape_of_avro(schema["items"], named)}
    if kind == "map":
        return {"map": shape_of_avro(schema["values"], named)}
    if kind == "long" and schema.get("logicalType") == "timestamp-micros":
        return "timestamp-micros"
    assert "logicalType" not in schema, f"unexpected logical type in {schema}"
    return kind


def fields_of_record(schema: dict[str, Any], named: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [
        (f["name"], shape_of_avro(f["type"], named), f.get("default", REQUIRED))
        for f in schema["fields"]
    ]


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda cls: cls.__name__)
def test_current_schema_matches_the_dataclass_field_for_field(cls: Any) -> None:
    current = CATALOGUE.current(cls.SCHEMA)
    assert current is not None, f"no schema file for {cls.SCHEMA}"
    assert current.raw["name"] == cls.__name__
    assert fields_of_record(current.raw, {}) == fields_of_class(cls)


def test_every_schema_name_has_an_event_class() -> None:
    assert set(CATALOGUE.names()) == set(BY_SCHEMA)


@pytest.mark.parametrize("version", list(CATALOGUE), ids=lambda v: f"{v.full_name}.{v.version}")
def test_every_schema_version_has_a_golden_sample(version: Any) -> None:
    assert (GOLDEN_DIR / f"{version.full_name}.{version.version}.bin").is_file(), (
        "run tests/data/golden/make_golden.py when releasing a schema version"
    )


def test_each_new_version_is_fully_compatible_with_the_one_before() -> None:
    # One test over all pairs: an empty parametrisation would show up as a skip today,
    # when every schema is at version 1. The rule itself is pinned by the table below.
    problems = {
        f"{newer.full_name}.{newer.version}": compatibility_problems(older.raw, newer.raw)
        for name in CATALOGUE.names()
        for older, newer in pairwise(CATALOGUE.versions(name))
    }
    assert {version: found for version, found in problems.items() if found} == {}


def record(*fields: dict[str, Any], name: str = "E") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields)}


NESTED_V1 = {"name": "a", "type": record({"name": "x", "type": "long"}, name="A")}
NESTED_V2_BAD = {
    "name": "a",
    "type": record({"name": "x", "type": "long"}, {"name": "y", "type": "long"}, name="A"),
}
ITEMS_V1 = {"name": "xs", "type": {"type": "array", "items": record(name="I")}}
ITEMS_V2_BAD = {
    "name": "xs",
    "type": {"type": "array", "items": record({"name": "y", "type": "string"}, name="I")},
}
COMPATIBILITY_RULE = [
    ("adding a field with a default", [], [{"name": "n", "type": "long", "default": 0}], []),
    (
        "adding a field without a default",
        [],
        [{"name": "n", "type": "long"}],
        ["n: added without a default"],
    ),
    (
        "removing a field that had a default",
        [{"name": "n", "type": "string", "default": ""}],
        [],
        [],
    ),
    (
        "removing a field without a default",
        [{"name": "n", "type": "string"}],
        [],
        ["n: removed but had no default"],
    ),
    (
        "changing a field's type",
        [{"name": "n", "type": "long"}],
        [{"name": "n", "type": "string"}],
        ["n: type changed from 'long' to 'string'"],
    ),
    (
        "only docs and defaults change",
        [{"name": "n", "type": "long"}],
        [{"name": "n", "type": "long", "doc": "count", "default": 1}],
        [],
    ),
    (
        "adding a field without a default inside a nested record",
        [NESTED_V1],
        [NESTED_V2_BAD],
        ["a.y: added without a default"],
    ),
    (
        "adding a field without a default inside array items",
        [ITEMS_V1],
        [ITEMS_V2_BAD],
        ["xs[].y: added without a default"],
    ),
]


@pytest.mark.parametrize(
    ("case", "old_fields", "new_fields", "problems"),
    COMPATIBILITY_RULE,
    ids=[c[0] for c in COMPATIBILITY_RULE],
)
def test_compatibility_rule_allows_only_defaulted_additions_and_removals(
    case: str, old_fields: list[Any], new_fields: list[Any], problems: list[str]
) -> None:
    assert compatibility_problems(record(*old_fields), record(*new_fields)) == problems, case
