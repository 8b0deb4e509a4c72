"""Answers and server-sent events as the client should see them: under the logical model
name it asked for, not the revision's lora name; the `usage` they report; and a replica's
error in OpenAI's shape whatever shape it came in."""

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


def openai_shaped(payload: bytes, status: int) -> bytes:
    """A replica's error answer as `{"error": {message, type, param, code}}`: one in that
    shape as it is; anything else (plain text, FastAPI's `{"detail": ...}`, an `error`
    that is only a string) wrapped, its text the message and its status the code."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = payload.decode(errors="replace").strip()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return payload
    if isinstance(body, dict):
        said = body.get("detail") or body.get("message") or body.get("error")
        message = said if isinstance(said, str) else json.dumps(body)
    else:
        message = body if isinstance(body, str) else json.dumps(body)
    error = {
        "message": message or f"The replica answered {status}.",
        "type": "server_error" if status >= 500 else "invalid_request_error",
        "param": None,
        "code": status,
    }
    return json.dumps({"error": error}).encode()


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
