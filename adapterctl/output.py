"""How adapterctl shows results: aligned tables and key/value blocks, or JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

NONE = "-"


def emit(text: str, stream: TextIO | None = None) -> None:
    """Write one block and a newline to stdout (or `stream`)."""
    (stream or sys.stdout).write(text + "\n")


def warn(text: str) -> None:
    """A message for the person at the terminal, never mixed into the output a script parses."""
    sys.stderr.write(f"adapterctl: {text}\n")


def moment(value: datetime | None) -> str:
    """A timestamp as an auditor reads it: UTC, to the second, with its `Z`."""
    if value is None:
        return NONE
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short(value: str | None, width: int = 22) -> str:
    """A digest cut to fit a table column; `--json` always carries the full value."""
    if not value:
        return NONE
    return value if len(value) <= width else value[: width - 3] + "..."


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], notes: Sequence[str] = ()
) -> str:
    """Columns padded to their widest cell; the last column runs free.

    `notes`, one per row, go indented on the line below their row: room for long text.
    """
    cells = [[NONE if c is None or c == "" else str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [line(headers), line(["-" * w for w in widths])]
    for i, row in enumerate(cells):
        lines.append(line(row))
        if i < len(notes):
            lines.append(f"    {notes[i]}")
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, object]], indent: int = 2) -> str:
    """`label  value` lines with the values aligned, for one record's details."""
    pairs = [(label, NONE if v is None or v == "" else str(v)) for label, v in pairs]
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"{' ' * indent}{label.ljust(width)}  {value}" for label, value in pairs)


def to_json(value: object) -> str:
    """Indented JSON; datetimes as ISO-8601 in UTC, dataclasses as objects."""
    return json.dumps(value, indent=2, default=_plain, ensure_ascii=False)


def _plain(value: object) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot show a {type(value).__name__} as JSON")
