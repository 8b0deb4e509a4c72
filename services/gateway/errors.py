"""Errors in OpenAI's shape, which its clients turn into their own exceptions."""

from __future__ import annotations

from fastapi.responses import JSONResponse


def openai_error(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    error = {"message": message, "type": kind, "param": param, "code": code}
    return JSONResponse({"error": error}, status)
