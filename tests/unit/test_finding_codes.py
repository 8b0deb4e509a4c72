"""Finding codes are one enum: the README's list is printed from it, and no producer spells
a code as a free string."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.validator import checks
from shared.findings import PRODUCERS, README_BEGIN, README_END, FindingCode, readme_block

ROOT = Path(__file__).resolve().parents[2]
CODES = frozenset(code.value for code in FindingCode)
# Callables whose first positional argument is a finding code.
CODE_FIRST = frozenset({"error", "warning", "HeaderError", "SourceRefused", "grouped", "_finding"})


def _readme_block(text: str) -> str:
    begin, end = text.index(README_BEGIN), text.index(README_END)
    return text[begin : end + len(README_END)]


def _called_name(call: ast.Call) -> str:
    """The name of a plain call (`error(...)`); methods such as `log.warning` are not code sites."""
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _is_code_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in CODES


def free_code_strings(source: str) -> list[tuple[int, str]]:
    """(line, code) for each finding code written as a string where a code is passed."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        passed = [k.value for k in node.keywords if k.arg == "code"]
        if _called_name(node) in CODE_FIRST and node.args:
            passed.append(node.args[0])
        found += [(arg.lineno, arg.value) for arg in passed if _is_code_literal(arg)]
    return found


def test_every_code_has_exactly_one_producer() -> None:
    listed = [code for codes in PRODUCERS.values() for code in codes]
    assert sorted(listed) == sorted(FindingCode)


def test_codes_are_lowercase_snake_case_names_of_their_members() -> None:
    for code in FindingCode:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code.value)
        assert code.name == code.value.upper()


def test_readme_lists_the_codes_printed_from_the_enum() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _readme_block(readme) == readme_block(), (
        "README.md's finding codes differ from shared/findings.py; "
        "paste the output of `python -m shared.findings` between the markers"
    )


def test_the_validators_table_names_exactly_the_codes_its_checks_raise() -> None:
    rows = re.findall(r"^\| ([a-z_]+)\s+\|", checks.__doc__ or "", re.MULTILINE)
    documented = set(rows) - {"code"}  # the header row
    # The handler's own two (an unreadable or mismatched manifest) are not checks.
    raised_by_checks = set(PRODUCERS["validator"]) - {
        FindingCode.MANIFEST_UNREADABLE,
        FindingCode.MANIFEST_MISMATCH,
    }
    assert documented == {code.value for code in raised_by_checks}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('error("hash_mismatch", "m")', [(1, "hash_mismatch")]),
        ('Finding(code="backend_error", severity="error", message="")', [(1, "backend_error")]),
        ('raise SourceRefused("symlink", "m")', [(1, "symlink")]),
        ('error(FindingCode.HASH_MISMATCH, "m")', []),
        ('log.warning("hash_mismatch")', []),  # a log event name, not a code
        ('error("not_a_code", "m")', []),
    ],
)
def test_the_scan_finds_a_code_passed_as_a_string(
    source: str, expected: list[tuple[int, str]]
) -> None:
    assert free_code_strings(source) == expected


def test_no_producer_passes_a_finding_code_as_a_free_string() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {code!r}"
        for folder in ("shared", "services")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, code in free_code_strings(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use shared.findings.FindingCode instead of: " + ", ".join(offenders)
