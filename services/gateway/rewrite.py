"""Answers and server-sent events as the client should see them: under the logical model
name it asked for, not the revision's lora name; and the `usage` they report."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

DONE = b"[DONE]"


def renamed(payload: bytes, model: str) -> tuple[bytes, Mapping[str, Any] | None]:
    """A JSON object with its `model` set to `model`, and its `usage`; anything that is
    not a JSON object comes back unchanged."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload, None
    if not isinstance(body, dict):
        return payload, None
    if "model" in body:
        body["model"] = model
        payload = json.dumps(body, separators=(",", ":")).encode()
    usage = body.get("usage")
    return payload, usage if isinstance(usage, Mapping) else None


def renamed_event(event: bytes, model: str) -> tuple[bytes, Mapping[str, Any] | None]:
    """One SSE event (its lines, without the blank line that ends it) renamed."""
    lines, usage = [], None
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data and data != DONE:
                data, usage = renamed(data, model)
                line = b"data: " + data
        lines.append(line)
    return b"\n".join(lines), usage


@dataclass
class EventSplitter:
    """Bytes as they arrive, cut into whole SSE events as soon as each one ends."""

    _pending: bytes = field(default=b"")

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._pending = (self._pending + chunk).replace(b"\r\n", b"\n")
        while (end := self._pending.find(b"\n\n")) >= 0:
            event, self._pending = self._pending[:end], self._pending[end + 2 :]
            yield event

    def rest(self) -> bytes:
        """What followed the last whole event (a stream cut short, or one without a blank
        line at its end)."""
        rest, self._pending = self._pending, b""
        return rest
