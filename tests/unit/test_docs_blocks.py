"""The docs' shell blocks without running them: each one the doc test can run, or marked
with the reason it cannot, and every `adapterctl` line in them (run or not) a command the
real parser accepts."""

from __future__ import annotations

import contextlib
import io
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapterctl.main import build_parser
from shared.settings import KernelSettings
from tests.doc_blocks import REPO, Block, all_blocks, blocks_of, documents, markers_of

# What tests/integration/test_docs_commands.py gives a block: the project's venv and its
# console script, jq, and the shell's own words. Anything else (make, docker, curl on a
# service that is not running, a GPU) needs a skip marker.
RUNNABLE_PROGRAMS = {"adapterctl", ".venv/bin/python", "jq", "export"}


def _words(script: str) -> Iterator[list[str]]:
    """Each simple command of `script` as its words (heredoc bodies left out)."""
    lines: list[str] = []
    in_heredoc = None
    for line in script.replace("\\\n", " ").splitlines():
        if in_heredoc is not None:
            in_heredoc = None if line.strip() == in_heredoc else in_heredoc
            continue
        if "<<'" in line:
            in_heredoc = line.split("<<'", 1)[1].split("'", 1)[0]
            line = line.split("<<", 1)[0]
        lines.append(line)
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True  # split at blanks and `|&;()` only
        command: list[str] = []
        for token in lexer:
            if set(token) <= set("|&;()$"):
                if command:
                    yield command
                command = []
            else:
                command.append(token)
        if command:
            yield command


def _programs(block: Block) -> set[str]:
    """The programs a block calls (assignments `X=...` skipped to the command they hold)."""
    programs = set()
    for words in _words(block.script):
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]
        if words:
            programs.add(words[0])
    return programs


def _adapterctl_calls() -> list[tuple[str, list[str]]]:
    return [
        (block.where, words[1:])
        for block in all_blocks()
        for words in _words(block.script)
        if words and words[0] == "adapterctl"
    ]


def test_the_docs_have_command_blocks_the_test_runs() -> None:
    blocks = all_blocks()
    assert len([b for b in blocks if b.skip_reason is None]) >= 5
    assert {b.document for b in blocks} >= {"README.md", "docs/runbook.md", "docs/merging.md"}


@pytest.mark.parametrize("block", all_blocks(), ids=lambda b: b.where)
def test_every_block_is_runnable_here_or_marked_with_the_reason(block: Block) -> None:
    if block.skip_reason is not None:
        assert len(block.skip_reason) > 10, f"{block.where}: say why it cannot run"
        return
    unrunnable = _programs(block) - RUNNABLE_PROGRAMS
    assert not unrunnable, (
        f"{block.where} calls {sorted(unrunnable)}, which the doc test cannot run: mark it "
        "`<!-- docs-test: skip (why) -->`, or give tests/integration/test_docs_commands.py "
        "what it needs"
    )


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_marker_stands_right_before_a_shell_block(document: Path) -> None:
    fences = {block.line for block in blocks_of(document)}
    for number, text in markers_of(document):
        if text.startswith("<!--"):
            assert number + 1 in fences, f"{document.name}:{number}: {text} marks no shell block"


@pytest.mark.parametrize(
    ("where", "arguments"), _adapterctl_calls(), ids=[w for w, _ in _adapterctl_calls()]
)
def test_every_documented_adapterctl_call_parses(where: str, arguments: list[str]) -> None:
    parser = build_parser(KernelSettings.from_env("adapterctl", {}))
    usage = io.StringIO()
    with contextlib.redirect_stderr(usage):
        try:
            parser.parse_args(arguments)
        except SystemExit as exc:
            pytest.fail(f"{where}: adapterctl {shlex.join(arguments)}\n{usage.getvalue()}{exc}")


@pytest.mark.parametrize(
    ("script", "programs"),
    [
        ("make demo   # a comment\nmake test\n", {"make"}),
        (
            'BASE=$(adapterctl base list --json | jq -r .x)\necho "$BASE"\n',
            {"adapterctl", "jq", "echo"},
        ),
        (".venv/bin/python - <<'EOF'\nimport os\nEOF\n", {".venv/bin/python"}),
        ("adapterctl submit ./a \\\n    --base b\n", {"adapterctl"}),
        ("open http://127.0.0.1:8480/ && curl -H 'x: y' host\n", {"open", "curl"}),
    ],
)
def test_reads_the_programs_a_block_calls(script: str, programs: set[str]) -> None:
    block = Block(document="x.md", line=1, language="bash", text=script, skip_reason=None)
    assert _programs(block) == programs
