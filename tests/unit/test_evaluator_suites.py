"""Golden suites: lookup per adapter and environment, what a suite may say, and scoring."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.gpu_evaluator.gates import MetricThreshold
from services.gpu_evaluator.ports import Message
from services.gpu_evaluator.scoring import check_output, no_op_rate, quality_metrics, score_items
from services.gpu_evaluator.suites import (
    DEFAULT_NO_OP_GATE,
    Expectation,
    SuiteError,
    find_suite,
    load_suite,
    parse_suite,
)

SUITES = Path(__file__).resolve().parents[1] / "data" / "suites"

HEAD = "suite: s\nversion: 1\n"
ITEM = "items:\n  - {id: a, prompt: hi, expect: {exact: yo}}\n"


@pytest.mark.parametrize(
    ("files", "adapter", "environment", "chosen"),
    [
        (
            ["acme/bot/staging.yaml", "acme/bot/default.yaml", "default.yaml"],
            "acme/bot",
            "staging",
            "acme/bot/staging.yaml",
        ),
        (
            ["acme/bot/production.yaml", "acme/bot/default.yaml", "default.yaml"],
            "acme/bot",
            "staging",
            "acme/bot/default.yaml",
        ),
        (["other/default.yaml", "default.yaml"], "acme/bot", "staging", "default.yaml"),
    ],
    ids=["environment file first", "then the adapter's default", "then the root default"],
)
def test_the_most_specific_suite_file_is_chosen(
    tmp_path: Path, files: list[str], adapter: str, environment: str, chosen: str
) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(HEAD + ITEM)
    assert find_suite(tmp_path, adapter, environment) == tmp_path / chosen


def test_a_missing_suite_names_every_path_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"acme/staging\.yaml.*acme/default\.yaml.*default\.yaml"):
        find_suite(tmp_path, "acme", "staging")


def test_an_adapter_name_cannot_lead_the_lookup_out_of_the_suites_root(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="escapes"):
        find_suite(tmp_path, "../../etc", "staging")


def test_the_suite_digest_is_the_sha256_of_its_bytes() -> None:
    suite = load_suite(SUITES, "any-adapter", "staging")
    data = (SUITES / "default.yaml").read_bytes()
    assert suite.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert suite.source == "default.yaml" and suite.name == "capitals"


def test_the_shipped_suites_parse_and_gate_what_they_measure() -> None:
    capitals = parse_suite((SUITES / "default.yaml").read_bytes(), source="default.yaml")
    structured = parse_suite((SUITES / "structured.yaml").read_bytes(), source="structured.yaml")
    assert {"accuracy", "no_op_rate", "mean_loglik", "latency_p95_ms"} <= set(capitals.gates)
    assert capitals.gates["no_op_rate"].greater_is_better is False
    assert structured.gates["schema_validity"] == MetricThreshold(threshold=0.9)
    assert all(i.expect.json_schema for i in structured.items)


def test_a_prompt_may_be_a_conversation_with_a_system_turn() -> None:
    suite = parse_suite(
        (
            HEAD + "items:\n  - id: a\n    prompt:\n      - {role: system, content: be brief}\n"
            "      - {role: user, content: hi}\n    expect: {contains: [y, o]}\n"
        ).encode(),
        source="s.yaml",
    )
    assert suite.items[0].prompt == (Message("system", "be brief"), Message("user", "hi"))
    assert suite.items[0].expect.contains == ("y", "o")


def test_must_change_items_get_the_default_no_op_gate_unless_the_suite_sets_one() -> None:
    item = "items:\n  - {id: a, prompt: hi, expect: {exact: yo}, must_change: true}\n"
    assert parse_suite((HEAD + item).encode(), source="s").gates["no_op_rate"] == (
        DEFAULT_NO_OP_GATE
    )
    own = HEAD + "gates:\n  no_op_rate: {threshold: 0.1}\n" + item
    assert parse_suite(own.encode(), source="s").gates["no_op_rate"] == MetricThreshold(
        threshold=0.1, greater_is_better=False
    )


BAD = [
    ("not yaml", "suite: [", "not YAML"),
    ("not a mapping", "- a\n- b\n", "a suite is a mapping"),
    ("no name", "version: 1\n" + ITEM, "`suite` is missing"),
    ("no version", "suite: s\n" + ITEM, "`version` is missing"),
    ("no items", HEAD + "items: []\n", "`items` is empty"),
    (
        "repeated ids",
        HEAD + ITEM + "  - {id: a, prompt: ho, expect: {exact: x}}\n",
        "item ids repeat",
    ),
    (
        "unknown expectation",
        HEAD + "items:\n  - {id: a, prompt: hi, expect: {fuzzy: x}}\n",
        "unknown expectations ['fuzzy']",
    ),
    (
        "no expectation",
        HEAD + "items:\n  - {id: a, prompt: hi, expect: {}}\n",
        "`expect` needs one of",
    ),
    (
        "bad regex",
        HEAD + "items:\n  - {id: a, prompt: hi, expect: {regex: '(unclosed'}}\n",
        "item 'a'",
    ),
    (
        "bad schema",
        HEAD + "items:\n  - {id: a, prompt: hi, expect: {json_schema: {type: 7}}}\n",
        "not a valid schema",
    ),
    (
        "empty prompt",
        HEAD + "items:\n  - {id: a, prompt: '', expect: {exact: x}}\n",
        "`prompt` must be",
    ),
    (
        "bad role",
        HEAD + "items:\n  - {id: a, prompt: [{role: bot, content: x}], expect: {exact: x}}\n",
        "each prompt turn needs a role",
    ),
    (
        "zero weight",
        HEAD + "items:\n  - {id: a, prompt: hi, expect: {exact: x}, weight: 0}\n",
        "`weight` must be positive",
    ),
    (
        "gate on an unmeasured metric",
        HEAD + "gates:\n  schema_validity: {threshold: 1}\n" + ITEM,
        "gates on metrics these items do not produce: ['schema_validity']",
    ),
    (
        "unknown gate key",
        HEAD + "gates:\n  accuracy: {floor: 1}\n" + ITEM,
        "unknown keys ['floor']",
    ),
    (
        "no-op rate cannot be greater-is-better",
        HEAD + "gates:\n  no_op_rate: {threshold: 0.2, greater_is_better: true}\n"
        "items:\n  - {id: a, prompt: hi, expect: {exact: x}, must_change: true}\n",
        "`greater_is_better` is False for this metric",
    ),
    ("max_new_tokens out of range", HEAD + "max_new_tokens: 0\n" + ITEM, "`max_new_tokens`"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_malformed_suite_is_refused_with_the_file_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(SuiteError) as refused:
        parse_suite(text.encode(), source="owners/bot.yaml")
    assert str(refused.value).startswith("owners/bot.yaml: ")
    assert message in str(refused.value)


SCHEMA = {"type": "object", "required": ["capital"], "properties": {"capital": {"type": "string"}}}
CHECKS = [
    (
        "exact ignores surrounding whitespace",
        Expectation(exact="paris"),
        " paris\n",
        {"exact": True},
    ),
    ("exact is case-sensitive", Expectation(exact="paris"), "Paris", {"exact": False}),
    ("contains needs every part", Expectation(contains=("a", "z")), "abc", {"contains": False}),
    ("regex searches", Expectation(regex=r"\d{3}"), "code 123!", {"regex": True}),
    (
        "valid JSON that fits",
        Expectation(json_schema=SCHEMA),
        '{"capital": "rome"}',
        {"json_schema": True},
    ),
    (
        "JSON in a Markdown fence",
        Expectation(json_schema=SCHEMA),
        '```json\n{"capital": "rome"}\n```',
        {"json_schema": True},
    ),
    (
        "JSON missing a required key",
        Expectation(json_schema=SCHEMA),
        '{"country": "it"}',
        {"json_schema": False},
    ),
    (
        "almost JSON",
        Expectation(json_schema=SCHEMA),
        '{"country": "it" "capital": "rome"',
        {"json_schema": False},
    ),
    (
        "every kind at once",
        Expectation(exact="x", contains=("x",), regex="x"),
        "x",
        {"exact": True, "contains": True, "regex": True},
    ),
    ("reference alone is not graded", Expectation(reference="x"), "y", {}),
]


@pytest.mark.parametrize(
    ("expect", "output", "checks"), [c[1:] for c in CHECKS], ids=[c[0] for c in CHECKS]
)
def test_each_expectation_judges_an_answer_as_its_table_says(
    expect: Expectation, output: str, checks: dict[str, bool]
) -> None:
    assert check_output(expect, output) == checks


MIXED = (
    HEAD
    + "items:\n"
    + "  - {id: a, prompt: p, expect: {exact: x}, weight: 3, tags: [t1], must_change: true}\n"
    + "  - {id: b, prompt: p, expect: {exact: y}, weight: 1, tags: [t1, t2], must_change: true}\n"
    + "  - {id: c, prompt: p, expect: {json_schema: {type: object}}}\n"
    + "  - {id: d, prompt: p, expect: {reference: x}}\n"
)


def test_accuracy_is_weighted_and_per_tag_while_rates_count_items() -> None:
    suite = parse_suite(MIXED.encode(), source="s")
    rows = score_items(suite, {"a": "x", "b": "nope", "c": "[]"}, {"d": -0.5})
    metrics = quality_metrics(rows)
    assert metrics == {
        "accuracy": 3 / 5,  # a (3) passes, b (1) and c (1) fail
        "accuracy.t1": 3 / 4,
        "accuracy.t2": 0.0,
        "schema_validity": 0.0,
        "mean_loglik": -0.5,
    }
    assert [r.score.passed for r in rows] == [True, False, False, None]


def test_the_no_op_rate_counts_must_change_items_answered_as_the_base_answers() -> None:
    suite = parse_suite(MIXED.encode(), source="s")
    rate = no_op_rate(suite.items, {"a": "x ", "b": "y"}, {"a": "x", "b": "z"})
    assert rate == (0.5, ["a"])
    plain = parse_suite((HEAD + ITEM).encode(), source="s")
    assert no_op_rate(plain.items, {"a": "yo"}, {"a": "yo"}) is None
