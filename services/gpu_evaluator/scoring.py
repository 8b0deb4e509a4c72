"""How one answer is judged against its item, and the suite's quality metrics. Pure."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.gpu_evaluator.suites import Expectation, Suite, SuiteItem

FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemScore:
    id: str
    output: str | None  # None: the item only measures log-likelihood
    passed: bool | None  # None: nothing to pass or fail
    checks: dict[str, bool] = field(default_factory=dict)
    loglik: float | None = None


@dataclass(frozen=True, slots=True)
class ScoreRow:
    item: SuiteItem
    score: ItemScore


def normalize(text: str) -> str:
    """What answers are compared on: surrounding whitespace never counts."""
    return text.strip()


def parse_json(output: str) -> Any:
    """The answer as JSON (a surrounding Markdown fence is allowed), or ValueError."""
    text = normalize(output)
    fenced = FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def check_output(expect: Expectation, output: str) -> dict[str, bool]:
    """Each graded expectation's verdict on one answer."""
    checks: dict[str, bool] = {}
    answer = normalize(output)
    if expect.exact is not None:
        checks["exact"] = answer == normalize(expect.exact)
    if expect.contains:
        checks["contains"] = all(part in answer for part in expect.contains)
    if expect.regex is not None:
        checks["regex"] = re.search(expect.regex, answer) is not None
    if expect.json_schema is not None:
        checks["json_schema"] = schema_valid(expect.json_schema, answer)
    return checks


def schema_valid(schema: Mapping[str, Any], output: str) -> bool:
    import jsonschema

    try:
        document = parse_json(output)
    except ValueError:
        return False
    validator = jsonschema.validators.validator_for(schema)(schema)
    return bool(validator.is_valid(document))


def score_items(
    suite: Suite, outputs: Mapping[str, str], logliks: Mapping[str, float]
) -> list[ScoreRow]:
    """Every item's score from the answers (by item id) and reference log-likelihoods."""
    rows: list[ScoreRow] = []
    for item in suite.items:
        output = outputs.get(item.id)
        checks = check_output(item.expect, output) if output is not None else {}
        graded = item.expect.graded and output is not None
        rows.append(
            ScoreRow(
                item=item,
                score=ItemScore(
                    id=item.id,
                    output=output,
                    passed=all(checks.values()) if graded else None,
                    checks=checks,
                    loglik=logliks.get(item.id),
                ),
            )
        )
    return rows


def quality_metrics(rows: Sequence[ScoreRow]) -> dict[str, float]:
    """accuracy (weighted), accuracy.<tag>, schema_validity and mean_loglik, where measured."""
    metrics: dict[str, float] = {}
    graded = [r for r in rows if r.score.passed is not None]
    if graded:
        metrics["accuracy"] = _weighted(graded)
        for tag in sorted({t for r in graded for t in r.item.tags}):
            metrics[f"accuracy.{tag}"] = _weighted([r for r in graded if tag in r.item.tags])
    structured = [r.score.checks["json_schema"] for r in rows if "json_schema" in r.score.checks]
    if structured:
        metrics["schema_validity"] = sum(structured) / len(structured)
    logliks = [r.score.loglik for r in rows if r.score.loglik is not None]
    if logliks:
        metrics["mean_loglik"] = statistics.fmean(logliks)
    return metrics


def no_op_rate(
    items: Sequence[SuiteItem], candidate: Mapping[str, str], base: Mapping[str, str]
) -> tuple[float, list[str]] | None:
    """Share of must-change items answered exactly as the base model answers, and which."""
    must = [i.id for i in items if i.must_change]
    if not must:
        return None
    same = [i for i in must if normalize(candidate[i]) == normalize(base[i])]
    return len(same) / len(must), same


def _weighted(rows: Sequence[ScoreRow]) -> float:
    total = sum(r.item.weight for r in rows)
    return sum(r.item.weight for r in rows if r.score.passed) / total
