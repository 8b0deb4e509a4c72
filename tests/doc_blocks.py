"""The shell blocks of the README and docs/*.md, as the doc tests read them.

A fenced ```bash, ```sh or ```console block is a command block. The doc test runs every
one of them unless the line before its fence is a marker saying why it cannot run here:

    <!-- docs-test: skip (needs a GPU) -->

In a ```console block only the lines after a `$ ` prompt are commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = ("bash", "sh", "console")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<verb>\S+)(?:\s*\((?P<reason>.*)\))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w-]*)\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    document: str  # relative to the repository root
    line: int  # the opening fence, 1-based
    language: str
    text: str  # the block's lines, their common indent removed
    skip_reason: str | None  # the marker's reason; None: the test runs it

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def script(self) -> str:
        """What bash runs: the whole block, or a console block's prompted lines."""
        if self.language != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    """Every fenced shell block of `path`, in order, with its marker's reason if any."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = opening.group("indent")
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if opening.group("language") in SHELL_LANGUAGES:
            body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
            found.append(
                Block(
                    document=str(path.relative_to(REPO)),
                    line=index + 1,
                    language=opening.group("language"),
                    text="\n".join(body) + "\n",
                    skip_reason=_skip_reason(lines[index - 1] if index else "", path, index),
                )
            )
        index = end + 1
    return found


def markers_of(path: Path) -> list[tuple[int, str]]:
    """Every `docs-test:` marker of `path` as (line, text): for checking each is used."""
    return [
        (number, line.strip())
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "docs-test:" in line
    ]


def _skip_reason(previous: str, path: Path, index: int) -> str | None:
    marker = MARKER.match(previous)
    if marker is None:
        return None
    if marker.group("verb") != "skip" or not (marker.group("reason") or "").strip():
        raise ValueError(
            f"{path}:{index}: write `<!-- docs-test: skip (why) -->`, not {previous!r}"
        )
    return marker.group("reason").strip()


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks_of(path)]
