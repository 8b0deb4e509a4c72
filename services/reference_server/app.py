"""The reference server's HTTP API: vLLM's LoRA and OpenAI endpoints, plus `/info`,
`/v1/routing`, `/metrics` and (for tests) `/admin/faults`."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from services.reference_server.bodies import error_response, missing_model, refuse_invalid
from services.reference_server.engine import Engine, LoadRefused
from services.reference_server.faults import Faults
from services.reference_server.models import model_routes
from services.reference_server.serving import Resolve, Unservable, serving_routes
from services.reference_server.settings import ServerSettings
from services.reference_server.telemetry import Telemetry
from shared.hf_folder import chat_template_hash, tokenizer_hash
from shared.routing import RoutingTable, choose


class LoadBody(BaseModel):
    lora_name: str
    lora_path: str


class UnloadBody(BaseModel):
    lora_name: str


@dataclass
class ServerState:
    settings: ServerSettings
    engine: Engine
    telemetry: Telemetry = field(default_factory=Telemetry)
    routing: RoutingTable = field(default_factory=RoutingTable)
    faults: Faults = field(default_factory=Faults)


def create_app(state: ServerState) -> FastAPI:
    """The server; `settings` can narrow it to what stock vLLM offers (no `/info`, no
    routing), without its runtime LoRA routes, or behind an API key, as vLLM can be."""
    settings = state.settings
    app = FastAPI(title="reference LoRA server", docs_url=None, redoc_url=None)
    routers = [_meta_routes, _admin_routes]
    if not settings.stock_vllm:
        routers += [_info_routes, _routing_routes]
    if settings.runtime_lora_updating:
        routers.append(_lora_routes)
    for routes in routers:
        app.include_router(routes(state))
    # vLLM 0.22 has no `GET /v1/models/{id}`: a stand-in for stock vLLM has none either
    app.include_router(model_routes(settings, state.engine, one_by_id=not settings.stock_vllm))
    app.include_router(serving_routes(state, _resolver(state)))
    app.add_exception_handler(RequestValidationError, refuse_invalid)  # type: ignore[arg-type]
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
    """Health and metrics."""
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

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
        if not body.lora_name or not body.lora_path:  # vLLM's words and type
            message = "Both 'lora_name' and 'lora_path' must be provided."
            return error_response(400, message, "InvalidUserInput")
        fault = state.faults.load_fault(body.lora_name)
        if fault == "error":
            return error_response(
                500, f"injected load fault for {body.lora_name}", "InternalServerError"
            )
        if fault == "silent":
            return PlainTextResponse(
                f"Success: LoRA adapter '{body.lora_name}' added successfully."
            )
        try:
            await asyncio.to_thread(engine.load, body.lora_name, body.lora_path)
        except LoadRefused as exc:
            return error_response(
                exc.status, str(exc), "NotFoundError" if exc.status == 404 else "BadRequestError"
            )
        state.telemetry.loaded.set(len(engine.loaded()))
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    @router.post("/v1/unload_lora_adapter", response_model=None)
    async def unload_lora(body: UnloadBody) -> Response:
        if not body.lora_name:
            message = "'lora_name' needs to be provided to unload a LoRA adapter."
            return error_response(400, message, "InvalidUserInput")
        if not await asyncio.to_thread(engine.unload, body.lora_name):
            return error_response(
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


def _resolver(state: ServerState) -> Resolve:
    """The LoRA that answers a model name: the base (None), a loaded LoRA by its own name,
    or, for a logical adapter name, the revision the pushed routing picks."""

    def resolve(model: str | None, request_id: str, tenant: str | None) -> str | None:
        if model is None or model == state.settings.base_model_id:
            return None
        if model in state.engine.loaded():
            return model
        route = state.routing.routes.get(model)
        if route is None:
            raise Unservable(404, missing_model(model), "NotFoundError", "model")
        lora = choose(route, request_id, tenant)
        if lora is None or lora not in state.engine.loaded():
            state.telemetry.unrouted.labels(model).inc()
            raise Unservable(503, f"no loaded revision serves {model!r} here", "ServiceUnavailable")
        return lora

    return resolve


def _admin_routes(state: ServerState) -> APIRouter:
    """Fault injection for tests, when REFERENCE_FAULTS_ENABLED is set."""
    router = APIRouter()
    settings = state.settings

    @router.get("/admin/faults", response_model=None)
    async def get_faults() -> Response:
        if not settings.faults_enabled:
            return error_response(
                404, "fault injection is off (REFERENCE_FAULTS_ENABLED)", "NotFoundError"
            )
        return JSONResponse(state.faults.to_json())

    @router.post("/admin/faults", response_model=None)
    async def put_faults(body: dict[str, Any]) -> Response:
        if not settings.faults_enabled:
            return error_response(
                404, "fault injection is off (REFERENCE_FAULTS_ENABLED)", "NotFoundError"
            )
        try:
            state.faults = Faults.from_json(body)
        except (ValueError, TypeError) as exc:
            return error_response(400, str(exc))
        return JSONResponse(state.faults.to_json())

    return router
