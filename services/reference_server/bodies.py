"""OpenAI's answer bodies as vLLM writes them: whole responses, stream chunks (server-sent
events ending in `data: [DONE]`) and errors (`{"error": {message, type, param, code}}`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.reference_server.protocol import ParameterRefused

DONE = "data: [DONE]\n\n"


def error_body(status: int, message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def error_response(
    status: int, message: str, kind: str = "BadRequestError", param: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind, param), status)


def missing_model(model: str) -> str:
    return f"The model `{model}` does not exist."


async def refuse_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """vLLM's answer to a body that does not validate: a 400 naming the parameter."""
    errors = exc.errors()
    refused = [
        e["ctx"]["error"]
        for e in errors
        if isinstance(e.get("ctx", {}).get("error"), ParameterRefused)
    ]
    if refused:
        return error_response(400, str(refused[0]), "Bad Request", refused[0].parameter)
    found = [(".".join(map(str, e["loc"][1:])), e["msg"]) for e in errors]
    message = "; ".join(f"{where}: {what}" if where else what for where, what in found)
    named = [e["loc"][1] for e in errors if len(e["loc"]) > 1 and isinstance(e["loc"][1], str)]
    return error_response(400, message, "Bad Request", named[0] if named else None)


def encode_event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@dataclass(frozen=True, slots=True)
class Shape:
    """Chat or text completions: their object names and where the answer's text goes."""

    id_prefix: str
    object: str
    chunk_object: str
    chat: bool

    def choice(
        self, index: int, text: str, finish_reason: str | None, stop_reason: str | None
    ) -> dict[str, Any]:
        ending = {"logprobs": None, "finish_reason": finish_reason, "stop_reason": stop_reason}
        if not self.chat:
            return {"index": index, "text": text, **ending}
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "tool_calls": [],
        }
        return {"index": index, "message": message, **ending}

    def delta(
        self,
        index: int,
        text: str,
        finish_reason: str | None = None,
        stop_reason: str | None = None,
        *,
        first: bool = False,
    ) -> dict[str, Any]:
        ending: dict[str, Any] = {"logprobs": None, "finish_reason": finish_reason}
        if finish_reason is not None:
            ending["stop_reason"] = stop_reason
        if not self.chat:
            return {"index": index, "text": text, **ending}
        delta = {"role": "assistant", "content": text} if first else {"content": text}
        return {"index": index, "delta": delta, **ending}


CHAT = Shape("chatcmpl-", "chat.completion", "chat.completion.chunk", chat=True)
TEXT = Shape("cmpl-", "text_completion", "text_completion", chat=False)


@dataclass(frozen=True, slots=True)
class Head:
    """What every body of one answer repeats."""

    id: str
    created: int
    model: str

    def body(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            **fields,
        }
