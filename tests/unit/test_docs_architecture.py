"""docs/architecture.md's checkable claims held to the code: the dispatcher's permanent
errors, the mypy scope, and links a reader can open (nothing outside the repository)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from tests.doc_blocks import REPO, documents

ARCHITECTURE = (REPO / "docs" / "architecture.md").read_text()
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def _names_passed_as(keyword: str, module: Path) -> list[str]:
    """The exception names a call in `module` passes as `keyword=(A, B)`."""
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.keyword) and node.arg == keyword:
            assert isinstance(node.value, ast.Tuple)
            return [ast.unparse(element) for element in node.value.elts]
    raise AssertionError(f"{module} passes no {keyword}=")


def test_names_every_error_the_services_dead_letter_at_once() -> None:
    permanent = _names_passed_as("permanent", REPO / "shared" / "service.py")
    section = ARCHITECTURE.split("## Errors", 1)[1].split("\n## ", 1)[0]
    assert permanent
    for name in permanent:
        assert f"{name}`" in section, f"## Errors does not name {name}"


def test_states_the_mypy_scope_pyproject_gives() -> None:
    files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    section = ARCHITECTURE.split("## Checks", 1)[1]
    stated = re.search(r"\(([^:]*): not", section)
    assert stated, "## Checks names no mypy scope"
    assert sorted(re.findall(r"`(\w+)`", stated.group(1))) == sorted(files)


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_opens_a_file_in_the_repository(document: Path) -> None:
    for target in LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https: and mailto: links leave the repository on purpose
        path = (document.parent / target).resolve()
        assert path.is_relative_to(REPO) and path.exists(), f"{document.name}: {target}"


def test_points_at_no_file_outside_the_repository() -> None:
    assert "../shared/" not in ARCHITECTURE and "outside this repo" not in ARCHITECTURE
