"""The reference server's HTTP API: vLLM's LoRA and OpenAI endpoints, plus `/info`,
`/v1/routing`, `/metrics` and (for tests) `/admin/faults`."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from services.reference_server.engine import Engine, LoadRefused
from services.reference_server.faults import Faults
from services.reference_server.settings import ServerSettings
from services.reference_server.telemetry import Telemetry
from shared.hf_folder import chat_template_hash, tokenizer_hash
from shared.routing import RoutingTable, choose


class LoadBody(BaseModel):
    lora_name: str
    lora_path: str


class UnloadBody(BaseModel):
    lora_name: str


class CompletionBody(BaseModel):
    model: str
    prompt: str | list[str]
    max_tokens: int = 16


class ChatBody(BaseModel):
    model: str
    messages: list[dict[str, str]]
    max_tokens: int = 16


@dataclass
class ServerState:
    settings: ServerSettings
    engine: Engine
    telemetry: Telemetry = field(default_factory=Telemetry)
    routing: RoutingTable = field(default_factory=RoutingTable)
    faults: Faults = field(default_factory=Faults)


def _error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


def create_app(state: ServerState) -> FastAPI:
    """The server; `settings` can narrow it to what stock vLLM offers (no `/info`, no
    routing), without its runtime LoRA routes, or behind an API key, as vLLM can be."""
    settings = state.settings
    app = FastAPI(title="reference LoRA server", docs_url=None, redoc_url=None)
    routers = [_meta_routes, _serving_routes, _admin_routes]
    if not settings.stock_vllm:
        routers += [_info_routes, _routing_routes]
    if settings.runtime_lora_updating:
        routers.append(_lora_routes)
    for routes in routers:
        app.include_router(routes(state))
    if settings.api_key:
        _require_key(app, settings.api_key)
    return app


def _require_key(app: FastAPI, key: str) -> None:
    """vLLM's `--api-key`: a `/v1` request without `Authorization: Bearer <key>` gets 401."""
    wanted = f"Bearer {key}".encode()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        given = request.headers.get("authorization", "").encode()
        if request.url.path.startswith("/v1") and not hmac.compare_digest(given, wanted):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        response: Response = await call_next(request)
        return response


def _info_routes(state: ServerState) -> APIRouter:
    """The contract it serves (`/info`): what stock vLLM cannot say."""
    router = APIRouter()
    settings = state.settings
    info = {
        "server": "reference",
        "base_model_id": settings.base_model_id,
        "base_model_revision": settings.base_model_revision,
        "tokenizer_hash": tokenizer_hash(settings.base_folder),
        "chat_template_hash": chat_template_hash(settings.base_folder),
        "quantization_profile": settings.quantization_profile,
    }

    @router.get("/info")
    async def describe() -> dict[str, str]:
        return info

    return router


def _meta_routes(state: ServerState) -> APIRouter:
    """Health, models and metrics."""
    router = APIRouter()
    settings, engine = state.settings, state.engine

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    config = settings.base_folder / "config.json"
    length = (
        json.loads(config.read_text()).get("max_position_embeddings") if config.is_file() else None
    )

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        base = {"id": settings.base_model_id, "object": "model", "root": str(settings.base_folder)}
        data = [{**base, "max_model_len": length}]
        data += [
            {"id": name, "object": "model", "root": path, "parent": settings.base_model_id}
            for name, path in sorted(engine.loaded().items())
        ]
        return {"object": "list", "data": data}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(state.telemetry.exposition(), media_type="text/plain; version=0.0.4")

    return router


def _lora_routes(state: ServerState) -> APIRouter:
    """vLLM's runtime LoRA endpoints: load and unload by name."""
    router = APIRouter()
    engine = state.engine

    @router.post("/v1/load_lora_adapter", response_model=None)
    async def load_lora(body: LoadBody) -> Response:
        fault = state.faults.load_fault(body.lora_name)
        if fault == "error":
            return _error(500, f"injected load fault for {body.lora_name}", "InternalServerError")
        if fault == "silent":
            return PlainTextResponse(
                f"Success: LoRA adapter '{body.lora_name}' added successfully."
            )
        try:
            await asyncio.to_thread(engine.load, body.lora_name, body.lora_path)
        except LoadRefused as exc:
            return _error(
                exc.status, str(exc), "NotFoundError" if exc.status == 404 else "BadRequestError"
            )
        state.telemetry.loaded.set(len(engine.loaded()))
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    @router.post("/v1/unload_lora_adapter", response_model=None)
    async def unload_lora(body: UnloadBody) -> Response:
        if not await asyncio.to_thread(engine.unload, body.lora_name):
            return _error(
                404, f"The lora adapter '{body.lora_name}' cannot be found.", "NotFoundError"
            )
        state.telemetry.loaded.set(len(engine.loaded()))
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")

    return router


def _routing_routes(state: ServerState) -> APIRouter:
    """The routing table the activator pushes (logical name to revisions)."""
    router = APIRouter()

    @router.post("/v1/routing")
    async def put_routing(document: dict[str, Any]) -> dict[str, Any]:
        table = RoutingTable.from_document(document)
        accepted = table.generation >= state.routing.generation
        if accepted:  # an older push arriving late never undoes a newer one
            state.routing = table
        return {"accepted": accepted, "generation": state.routing.generation}

    @router.get("/v1/routing")
    async def get_routing() -> dict[str, Any]:
        return {
            "generation": state.routing.generation,
            "adapters": {
                a: {
                    "active": r.active,
                    "canary": r.canary,
                    "canary_percent": r.canary_percent,
                    "canary_tenants": sorted(r.canary_tenants),
                }
                for a, r in state.routing.routes.items()
            },
        }

    return router


def _serving_routes(state: ServerState) -> APIRouter:
    """Completions and chat completions, for the base or a loaded or routed LoRA."""
    router = APIRouter()
    settings, engine = state.settings, state.engine

    async def serve(
        request: Request, model: str, run: Callable[[str | None], Awaitable[dict[str, Any]]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        lora: str | None = None
        if model != settings.base_model_id:
            if model in engine.loaded():
                lora = model
            elif model in state.routing.routes:
                lora = choose(
                    state.routing.routes[model], request_id, request.headers.get("x-tenant")
                )
                if lora is None or lora not in engine.loaded():
                    state.telemetry.unrouted.labels(model).inc()
                    return _error(
                        503, f"no loaded revision serves {model!r} here", "ServiceUnavailable"
                    )
            else:
                return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
        started = time.perf_counter()
        failed = True
        try:
            if lora is not None and (delay := state.faults.delay_s(lora)):
                await asyncio.sleep(delay)
            if lora is not None and state.faults.request_fails(lora):
                return _error(500, f"injected fault for {lora}", "InternalServerError")
            body = await run(lora)
            failed = False
        except Exception as exc:  # answered as a 500 and counted against the revision
            return _error(500, f"generation failed: {exc!r}", "InternalServerError")
        finally:
            seconds = time.perf_counter() - started
            if lora is None:
                state.telemetry.observe_base(settings.base_model_id, seconds, failed=failed)
            else:
                state.telemetry.observe_lora(lora, seconds, failed=failed)
        served = lora or settings.base_model_id
        headers = {"x-served-model": served, "x-request-id": request_id}
        return JSONResponse({**body, "id": request_id, "model": served}, headers=headers)

    @router.post("/v1/completions", response_model=None)
    async def completions(body: CompletionBody, request: Request) -> Response:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt

        async def run(lora: str | None) -> dict[str, Any]:
            texts = await asyncio.to_thread(
                engine.generate, lora, prompts, max_new_tokens=body.max_tokens
            )
            choices = [
                {"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)
            ]
            return {"object": "text_completion", "choices": choices}

        return await serve(request, body.model, run)

    @router.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatBody, request: Request) -> Response:
        prompt = engine.render_chat(body.messages)

        async def run(lora: str | None) -> dict[str, Any]:
            texts = await asyncio.to_thread(
                engine.generate, lora, [prompt], max_new_tokens=body.max_tokens
            )
            message = {"role": "assistant", "content": texts[0]}
            return {
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }

        return await serve(request, body.model, run)

    return router


def _admin_routes(state: ServerState) -> APIRouter:
    """Fault injection for tests, when REFERENCE_FAULTS_ENABLED is set."""
    router = APIRouter()
    settings = state.settings

    @router.get("/admin/faults", response_model=None)
    async def get_faults() -> Response:
        if not settings.faults_enabled:
            return _error(404, "fault injection is off (REFERENCE_FAULTS_ENABLED)", "NotFoundError")
        return JSONResponse(state.faults.to_json())

    @router.post("/admin/faults", response_model=None)
    async def put_faults(body: dict[str, Any]) -> Response:
        if not settings.faults_enabled:
            return _error(404, "fault injection is off (REFERENCE_FAULTS_ENABLED)", "NotFoundError")
        try:
            state.faults = Faults.from_json(body)
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return JSONResponse(state.faults.to_json())

    return router
