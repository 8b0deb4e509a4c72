"""Which regular expressions an adapter config may carry: PEFT's real patterns pass, and
the ones a backtracking engine could take hours over are refused before anything runs."""

from __future__ import annotations

import re
import time

import pytest

from services.validator.patterns import pattern_problem

MODULE = "base_model.model.model.layers.11.self_attn.q_proj"


@pytest.mark.parametrize(
    "pattern",
    [
        "all-linear",
        r".*decoder.*(SelfAttention|EncDecAttention).*(q|v)$",
        r"model\.layers\.\d+\.self_attn\.(q_proj|v_proj)",
        r".*\.(q|k|v|o)_proj",
        "a{0,1000}b{0,1000}",
        ".*.*.*.*x",
    ],
)
def test_patterns_peft_users_write_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(", "not a valid regular expression"),
        ("x{99999999999999999999}", "not a valid regular expression"),
        ("(.*.*)*x", "nests a quantifier inside another"),
        ("(a+)+$", "nests a quantifier inside another"),
        ("(.|.)*x", "repeats an alternation"),
        (r"(\w+)\1", "uses a backreference"),
        (".*.*.*.*.*x", "has 5 unbounded quantifiers"),
    ],
)
def test_patterns_that_backtrack_without_bound_are_refused_saying_why(
    pattern: str, why: str
) -> None:
    assert why in (pattern_problem(pattern) or "")


def test_every_accepted_pattern_fails_fast_on_a_long_module_name() -> None:
    began = time.perf_counter()
    re.fullmatch(".*.*.*.*x", MODULE)  # the worst accepted shape
    assert time.perf_counter() - began < 1.0
