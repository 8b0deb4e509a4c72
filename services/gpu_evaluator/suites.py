"""Golden suites: versioned YAML files that product owners keep, one per adapter and
environment, read and checked here; the sha256 of a suite's bytes binds an evaluation.

Lookup under the suites root: `<adapter>/<environment>.yaml`, then `<adapter>/default.yaml`,
then `default.yaml`. A suite holds items (a prompt, what the answer must satisfy, a weight,
tags, and `must_change` for the no-op check) and the gates on the metrics they produce.
When a suite has `must_change` items but no `no_op_rate` gate, `DEFAULT_NO_OP_GATE` applies:
an adapter that changes nothing never passes silently.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from services.gpu_evaluator.gates import MetricThreshold
from services.gpu_evaluator.ports import Message, Prompt
from shared.artifacts import StoreError, safe_relative

DEFAULT_NO_OP_GATE = MetricThreshold(threshold=0.5, greater_is_better=False)
GRADED = ("exact", "contains", "regex", "json_schema")
EXPECTATIONS = (*GRADED, "reference")
GATE_KEYS = ("threshold", "min_absolute_change", "min_relative_change", "greater_is_better")
PERFORMANCE_METRICS = ("latency_p50_ms", "latency_p95_ms", "tokens_per_s")
# Metrics where less is better; a gate on them defaults to `greater_is_better: false`.
LOWER_IS_BETTER = frozenset({"no_op_rate", "latency_p50_ms", "latency_p95_ms"})
ROLES = ("system", "user", "assistant")
# libyaml's parser where PyYAML was built with it (the wheels are): same safe subset, faster.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SuiteError(ValueError):
    """A suite that is missing or malformed: says which file and what is wrong."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    exact: str | None = None
    contains: tuple[str, ...] = ()
    regex: str | None = None
    json_schema: Mapping[str, Any] | None = None
    reference: str | None = None  # scored by the candidate's mean token log-likelihood

    @property
    def graded(self) -> bool:
        """True when the answer passes or fails (reference alone only measures)."""
        return bool(self.exact is not None or self.contains or self.regex or self.json_schema)


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteItem:
    id: str
    prompt: Prompt
    expect: Expectation
    weight: float = 1.0
    tags: tuple[str, ...] = ()
    must_change: bool = False

    @property
    def generates(self) -> bool:
        return self.expect.graded or self.must_change


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    name: str
    version: str
    owner: str
    digest: str  # "sha256:<hex>" of the file's bytes
    source: str  # where it was read from, relative to the suites root
    max_new_tokens: int
    items: tuple[SuiteItem, ...]
    gates: Mapping[str, MetricThreshold] = field(default_factory=dict)


def find_suite(root: Path, adapter: str, environment: str) -> Path:
    """The most specific suite file for the adapter in the environment, or SuiteError."""
    try:
        folder = root / safe_relative(adapter)
        env_file = safe_relative(f"{environment}.yaml")
    except StoreError as exc:
        raise SuiteError(f"no suite path for {adapter!r} in {environment!r}: {exc}") from exc
    tried = [folder / env_file, folder / "default.yaml", root / "default.yaml"]
    for path in tried:
        if path.is_file():
            return path
    raise SuiteError(
        f"no golden suite for adapter {adapter!r} in environment {environment!r}; looked for "
        + ", ".join(str(p) for p in tried)
    )


def load_suite(root: Path, adapter: str, environment: str) -> Suite:
    """The suite's file read afresh for every evaluation (an edit applies to the next one);
    parsing is cached by the bytes read, so an unchanged suite is parsed once."""
    path = find_suite(root, adapter, environment)
    return _parse_cached(path.read_bytes(), path.relative_to(root).as_posix())


@lru_cache(maxsize=64)
def _parse_cached(data: bytes, source: str) -> Suite:
    return parse_suite(data, source=source)


def parse_suite(data: bytes, *, source: str) -> Suite:
    """The suite in `data`, checked whole; SuiteError names the file and the problem."""
    try:
        body = yaml.load(data, Loader=SafeLoader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        raise SuiteError(f"{source}: not YAML: {exc}") from exc
    if not isinstance(body, dict):
        raise SuiteError(f"{source}: a suite is a mapping with `suite`, `version` and `items`")
    try:
        items = tuple(_item(raw, i) for i, raw in enumerate(_list(body, "items")))
        if not items:
            raise ValueError("`items` is empty")
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"item ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        gates = {str(name): _gate(name, raw) for name, raw in _dict(body, "gates").items()}
        if any(item.must_change for item in items):
            gates.setdefault("no_op_rate", DEFAULT_NO_OP_GATE)
        _check_gates_measurable(gates, items)
        max_new_tokens = int(body.get("max_new_tokens", 32))
        if not 1 <= max_new_tokens <= 4096:
            raise ValueError("`max_new_tokens` must be between 1 and 4096")
        return Suite(
            name=_text(body, "suite"),
            version=str(body.get("version", "")) or _missing("version"),
            owner=str(body.get("owner", "")),
            digest="sha256:" + hashlib.sha256(data).hexdigest(),
            source=source,
            max_new_tokens=max_new_tokens,
            items=items,
            gates=gates,
        )
    except (ValueError, TypeError) as exc:
        raise SuiteError(f"{source}: {exc}") from exc


def measurable_metrics(items: tuple[SuiteItem, ...]) -> set[str]:
    """The metrics an evaluation of these items produces."""
    graded = [i for i in items if i.expect.graded]
    metrics = set(PERFORMANCE_METRICS)
    if graded:
        metrics |= {"accuracy"} | {f"accuracy.{t}" for i in graded for t in i.tags}
    if any(i.expect.json_schema for i in items):
        metrics.add("schema_validity")
    if any(i.expect.reference is not None for i in items):
        metrics.add("mean_loglik")
    if any(i.must_change for i in items):
        metrics.add("no_op_rate")
    return metrics


def _check_gates_measurable(gates: Mapping[str, Any], items: tuple[SuiteItem, ...]) -> None:
    unknown = sorted(set(gates) - measurable_metrics(items))
    if unknown:
        raise ValueError(f"gates on metrics these items do not produce: {unknown}")


def _item(raw: Any, index: int) -> SuiteItem:
    if not isinstance(raw, dict):
        raise ValueError(f"item {index} is not a mapping")
    item_id = str(raw.get("id") or f"item-{index}")
    try:
        expect = _expectation(_dict(raw, "expect"))
        weight = float(raw.get("weight", 1.0))
        if not weight > 0:
            raise ValueError("`weight` must be positive")
        must_change = raw.get("must_change", False)
        if not isinstance(must_change, bool):
            raise ValueError("`must_change` must be true or false")
        if not expect.graded and expect.reference is None and not must_change:
            raise ValueError(f"`expect` needs one of {', '.join(EXPECTATIONS)}")
        return SuiteItem(
            id=item_id,
            prompt=_prompt(raw.get("prompt")),
            expect=expect,
            weight=weight,
            tags=tuple(str(t) for t in raw.get("tags") or ()),
            must_change=must_change,
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"item {item_id!r}: {exc}") from exc


def _prompt(raw: Any) -> Prompt:
    if isinstance(raw, str) and raw:
        return (Message(role="user", content=raw),)
    if isinstance(raw, list) and raw:
        messages = []
        for turn in raw:
            if not isinstance(turn, dict) or turn.get("role") not in ROLES:
                raise ValueError(f"each prompt turn needs a role in {ROLES} and content")
            messages.append(Message(role=turn["role"], content=str(turn.get("content", ""))))
        return tuple(messages)
    raise ValueError("`prompt` must be a string or a list of {role, content} turns")


def _expectation(raw: Mapping[str, Any]) -> Expectation:
    unknown = sorted(set(raw) - set(EXPECTATIONS))
    if unknown:
        raise ValueError(f"unknown expectations {unknown}; known: {', '.join(EXPECTATIONS)}")
    contains = raw.get("contains", ())
    regex = raw.get("regex")
    if regex is not None:
        try:
            re.compile(str(regex))
        except re.error as exc:
            raise ValueError(f"`regex` does not compile: {exc}") from exc
    schema = raw.get("json_schema")
    if schema is not None:
        _check_schema(schema)
    return Expectation(
        exact=None if raw.get("exact") is None else str(raw["exact"]),
        contains=(str(contains),) if isinstance(contains, str) else tuple(map(str, contains)),
        regex=None if regex is None else str(regex),
        json_schema=schema,
        reference=None if raw.get("reference") is None else str(raw["reference"]),
    )


def _check_schema(schema: Any) -> None:
    import jsonschema

    if not isinstance(schema, dict):
        raise ValueError("`json_schema` must be a JSON Schema object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"`json_schema` is not a valid schema: {exc.message}") from exc


def _gate(name: Any, raw: Any) -> MetricThreshold:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"gate {name!r} must be a mapping with some of {GATE_KEYS}")
    unknown = sorted(set(raw) - set(GATE_KEYS))
    if unknown:
        raise ValueError(f"gate {name!r}: unknown keys {unknown}; known: {GATE_KEYS}")
    natural = str(name) not in LOWER_IS_BETTER
    better = raw.get("greater_is_better", natural)
    if not isinstance(better, bool):
        raise ValueError(f"gate {name!r}: `greater_is_better` must be true or false")
    if better != natural and str(name) in LOWER_IS_BETTER | {"accuracy", "tokens_per_s"}:
        raise ValueError(f"gate {name!r}: `greater_is_better` is {natural} for this metric")

    def number(key: str) -> float | None:
        return None if raw.get(key) is None else float(raw[key])

    return MetricThreshold(
        threshold=number("threshold"),
        min_absolute_change=number("min_absolute_change"),
        min_relative_change=number("min_relative_change"),
        greater_is_better=better,
    )


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise ValueError(f"`{key}` must be a list")
    return value


def _dict(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"`{key}` must be a mapping")
    return value


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return str(value) if value else _missing(key)


def _missing(key: str) -> str:
    raise ValueError(f"`{key}` is missing")
