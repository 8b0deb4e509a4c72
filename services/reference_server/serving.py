"""Chat and text completions, whole or streamed, answered as vLLM's OpenAI server answers
them (usage, finish reasons, `stream_options.include_usage`), for the base or a LoRA."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from jinja2 import TemplateError

from services.reference_server.bodies import (
    CHAT,
    DONE,
    TEXT,
    Head,
    Shape,
    encode_event,
    error_body,
    error_response,
    usage,
)
from services.reference_server.engine import Engine, Sampling
from services.reference_server.faults import Faults
from services.reference_server.generation import Piece, Plan, generate_pieces
from services.reference_server.protocol import (
    ChatRequest,
    CompletionRequest,
    GenerationRequest,
    ParameterRefused,
    bound_tokens,
)
from services.reference_server.settings import ServerSettings
from services.reference_server.telemetry import Telemetry


class Unservable(Exception):
    """No model here answers the name a request gives."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.param = status, kind, param


# (model asked for, request id, tenant) -> the LoRA that answers it, or None for the base
Resolve = Callable[[str | None, str, str | None], str | None]


class Serving(Protocol):
    settings: ServerSettings
    engine: Engine
    telemetry: Telemetry
    faults: Faults


def serving_routes(state: Serving, resolve: Resolve) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request) -> Response:
        def render() -> list[str]:
            return [state.engine.render_chat(body.conversation())]

        return await _answer(state, resolve, request, body, render, CHAT, field="messages")

    @router.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await _answer(state, resolve, request, body, body.prompts, TEXT, field="prompt")

    return router


async def _answer(
    state: Serving,
    resolve: Resolve,
    request: Request,
    body: GenerationRequest,
    render: Callable[[], list[str]],
    shape: Shape,
    *,
    field: str,
) -> Response:
    engine = state.engine
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    try:
        lora = resolve(body.model, request_id, request.headers.get("x-tenant"))
        prompts = render()
        counts = [engine.count_tokens(p) for p in prompts]
        bounds = [bound_tokens(body, c, engine.max_model_len, field=field) for c in counts]
    except Unservable as exc:
        return error_response(exc.status, str(exc), exc.kind, exc.param)
    except ParameterRefused as exc:
        return error_response(400, str(exc), "BadRequestError", exc.parameter)
    except TemplateError as exc:
        return error_response(400, f"the chat template cannot render these messages: {exc}")
    samplings = [Sampling(b, body.temperature, body.top_p, body.seed) for b in bounds]
    plan = Plan(prompts, body.n, samplings, body.stops())
    served = lora or state.settings.base_model_id
    head = Head(f"{shape.id_prefix}{request_id}", int(time.time()), served)
    headers = {"x-served-model": served, "x-request-id": request_id}
    observe = _observer(state, lora)
    if lora is not None:
        if delay := state.faults.delay_s(lora):
            await asyncio.sleep(delay)
        if state.faults.request_fails(lora):
            observe(True)
            return error_response(500, f"injected fault for {lora}", "InternalServerError")
    answer = generate_pieces(engine, lora, plan)
    if body.stream:
        choices = len(prompts) * body.n
        events = _stream(answer, shape, head, choices, sum(counts), body.include_usage, observe)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    try:
        whole = await _collect(answer, shape, head, sum(counts))
    except Exception as exc:  # answered as a 500 and counted against the revision
        observe(True)
        return error_response(500, f"generation failed: {exc!r}", "InternalServerError")
    observe(False)
    return JSONResponse(whole, headers=headers)


def _observer(state: Serving, lora: str | None) -> Callable[[bool], None]:
    """Records the request's outcome and its time from now (injected delays included)."""
    started = time.perf_counter()

    def observe(failed: bool) -> None:
        seconds = time.perf_counter() - started
        if lora is None:
            state.telemetry.observe_base(state.settings.base_model_id, seconds, failed=failed)
        else:
            state.telemetry.observe_lora(lora, seconds, failed=failed)

    return observe


async def _collect(
    answer: AsyncIterator[Piece], shape: Shape, head: Head, prompt_tokens: int
) -> dict[str, Any]:
    texts: dict[int, list[str]] = {}
    ends: list[Piece] = []
    async for piece in answer:
        texts.setdefault(piece.index, []).append(piece.text)
        if piece.finish_reason is not None:
            ends.append(piece)
    choices = [
        shape.choice(e.index, "".join(texts[e.index]), e.finish_reason, e.stop_reason) for e in ends
    ]
    spent = usage(prompt_tokens, sum(e.tokens for e in ends))
    return head.body(shape.object, choices=choices, usage=spent, system_fingerprint=None)


async def _stream(
    answer: AsyncIterator[Piece],
    shape: Shape,
    head: Head,
    choices: int,
    prompt_tokens: int,
    include_usage: bool,
    observe: Callable[[bool], None],
) -> AsyncIterator[str]:
    """Each piece as its own event, as soon as it is made; an error after the first byte
    is an error event, as vLLM sends it; a client that leaves is no failure of the model."""
    failed: bool | None = None
    try:
        if shape.chat:  # vLLM opens each chat choice with the role
            for index in range(choices):
                yield _chunk(shape, head, [shape.delta(index, "", first=True)])
        spent = 0
        async for piece in answer:
            spent += piece.tokens
            delta = shape.delta(piece.index, piece.text, piece.finish_reason, piece.stop_reason)
            yield _chunk(shape, head, [delta])
        if include_usage:
            yield _chunk(shape, head, [], usage=usage(prompt_tokens, spent))
        failed = False
    except Exception as exc:
        failed = True
        yield encode_event(error_body(500, f"generation failed: {exc!r}", "InternalServerError"))
    finally:
        observe(bool(failed))
    yield DONE


def _chunk(shape: Shape, head: Head, choices: Sequence[dict[str, Any]], **extra: Any) -> str:
    return encode_event(head.body(shape.chunk_object, choices=list(choices), **extra))
