"""Errors in OpenAI's shape, which its clients turn into their own exceptions: as an
answer, or as the event that ends a stream the replica broke off."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse


def error_body(
    message: str, kind: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, kind, code, param), status)


def error_event(message: str, kind: str, code: str | None = None) -> bytes:
    """A server-sent event the official clients raise as an error mid-stream (vLLM sends
    its own failures mid-stream the same way)."""
    return b"data: " + json.dumps(error_body(message, kind, code)).encode() + b"\n\n"
