"""Every finding code says what it means and how to fix it, and docs/findings.md is the
reference generated from that one table."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import findings
from shared.findings import GUIDANCE, PRODUCERS, UNKNOWN, FindingCode, fix_for, reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("code", list(FindingCode))
def test_every_code_has_a_one_line_meaning_and_a_fix(code: FindingCode) -> None:
    guidance = GUIDANCE[code]
    for text in (guidance.meaning, guidance.fix):
        assert text.strip() and "\n" not in text and "|" not in text  # one table cell
    assert fix_for(code.value) == guidance.fix


def test_a_code_from_a_newer_version_gets_a_pointer_not_a_crash() -> None:
    assert fix_for("not_a_code_yet") == UNKNOWN.fix


def test_docs_findings_md_is_the_generated_reference() -> None:
    written = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert written == reference(), (
        "docs/findings.md differs from shared/findings.py; "
        "run `python -m shared.findings --write docs/findings.md`"
    )


def test_the_reference_groups_every_code_under_the_service_that_raises_it() -> None:
    text = reference()
    for producer, codes in PRODUCERS.items():
        section = text.split(f"## {producer}\n", 1)[1].split("\n## ", 1)[0]
        assert [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")] == [
            c.value for c in codes
        ]


def test_the_module_prints_the_readme_paragraph_and_writes_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert findings.main([]) == 0
    assert capsys.readouterr().out == findings.readme_block() + "\n"
    target = tmp_path / "findings.md"
    assert findings.main(["--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == reference()
