"""The gateway's HTTP API: OpenAI's completions, chat completions and models under logical
adapter names, forwarded to the replicas under the revision's lora name; the routing it
applies (`/v1/routing`, pushed by the activator or pulled from it) and its GIE export;
`/metrics` and `/healthz`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.errors import error_event, openai_error
from services.gateway.forwarding import NoReplica, ReplicaBroken, Upstream
from services.gateway.gie import inference_models, to_yaml
from services.gateway.keys import ClientKeys, admits_bearer, bearer
from services.gateway.resolution import Outcome, resolve
from services.gateway.rewrite import EventSplitter, openai_shaped, renamed, renamed_event
from services.gateway.state import GatewayState
from services.gateway.telemetry import UNREACHABLE
from shared.routing import RoutingDocumentError

log = structlog.get_logger("gateway")
OPEN = ("/v1/routing",)  # read by anyone; a push is checked against the admin key


def create_app(state: GatewayState) -> FastAPI:
    app = FastAPI(title="LoRA gateway", docs_url=None, redoc_url=None, lifespan=state.lifespan)
    for routes in (_serving_routes, _model_routes, _routing_routes, _meta_routes):
        app.include_router(routes(state))

    app.add_middleware(ClientAuth, keys=state.keys)
    return app


class ClientAuth:
    """Every `/v1` route but the routing's wants a listed client key (a plain ASGI
    middleware: it adds nothing to a streamed answer's path)."""

    def __init__(self, app: ASGIApp, keys: ClientKeys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded = scope["type"] == "http" and path.startswith("/v1") and not path.startswith(OPEN)
        if guarded and not self.keys.admits(bearer(Headers(scope=scope).get("authorization", ""))):
            refused = openai_error(
                401, "Incorrect or missing API key.", "invalid_request_error", "invalid_api_key"
            )
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _serving_routes(state: GatewayState) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Response:
        return await forward(state, request, "/v1/chat/completions")

    @router.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Response:
        return await forward(state, request, "/v1/completions")

    return router


async def forward(state: GatewayState, request: Request, path: str) -> Response:
    """Resolve the request's model, send it to a replica, relay the answer renamed."""
    started = time.perf_counter()
    try:
        body = json.loads(await request.body())
    except ValueError:
        return openai_error(400, "The body is not valid JSON.", "invalid_request_error")
    if not isinstance(body, dict):
        return openai_error(400, "The body must be a JSON object.", "invalid_request_error")
    asked = body.get("model")
    model = asked if isinstance(asked, str) else ""
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    table = state.applied.table if state.applied else None
    resolution = resolve(
        model, table, state.settings.base_model, request_id, request.headers.get("x-tenant")
    )
    if resolution.outcome is not Outcome.base and resolution.outcome is not Outcome.revision:
        return refusal(state, resolution.outcome, model)
    target = resolution.target or model
    headers = {"content-type": "application/json", "x-request-id": request_id}
    if state.replica_key:
        headers["authorization"] = f"Bearer {state.replica_key}"
    telemetry = state.telemetry
    telemetry.requests.labels(model, target).inc()
    revision = target if resolution.outcome is Outcome.revision else None
    try:
        upstream = await state.replicas.open(
            path, json.dumps({**body, "model": target}).encode(), headers, revision=revision
        )
    except NoReplica as exc:
        telemetry.fail(model, target, exc.error_code)
        telemetry.duration.labels(model, target).observe(time.perf_counter() - started)
        log.warning("forward_failed", model=model, target=target, reason=exc.message)
        return openai_error(exc.status, exc.message, "server_error", "replica_unavailable")
    status = upstream.status
    if status >= 500:
        telemetry.fail(model, target, status)
    answer_headers = {"x-served-model": target, "x-request-id": request_id}
    media = upstream.media_type
    if media.startswith("text/event-stream"):
        relay = _relay(state, upstream, model, target, started)
        # A client gone before the first chunk never starts the relay: the task closes it.
        closing = BackgroundTask(upstream.close)
        return StreamingResponse(relay, status, answer_headers, media, closing)
    try:
        content = await upstream.read()
    except ReplicaBroken as exc:
        telemetry.fail(model, target, UNREACHABLE)
        return openai_error(502, str(exc), "server_error", "replica_unavailable")
    finally:
        await upstream.close()
        telemetry.duration.labels(model, target).observe(time.perf_counter() - started)
    if status >= 400:
        content, media = openai_shaped(content, status), "application/json"
    content, usage = renamed(content, model)
    telemetry.observe_usage(model, target, usage)
    return Response(content, status, answer_headers, media_type=media)


async def _relay(
    state: GatewayState, upstream: Upstream, model: str, target: str, started: float
) -> AsyncIterator[bytes]:
    """The replica's events as they come, each renamed: nothing waits for the next."""
    telemetry, splitter, first = state.telemetry, EventSplitter(), True
    try:
        async for chunk in upstream.chunks():
            for event in splitter.feed(chunk):
                if first:
                    telemetry.first_token.labels(model, target).observe(
                        time.perf_counter() - started
                    )
                    first = False
                event, usage = renamed_event(event, model)
                telemetry.observe_usage(model, target, usage)
                yield event + b"\n\n"
        if rest := splitter.rest():
            yield rest
    except ReplicaBroken as exc:  # the status is sent: an event says the stream broke
        telemetry.fail(model, target, UNREACHABLE)
        log.warning("stream_broken", model=model, target=target, reason=repr(exc))
        message = "The replica broke off the stream before its end."
        yield error_event(message, "server_error", "replica_unavailable")
    finally:
        await upstream.close()
        telemetry.duration.labels(model, target).observe(time.perf_counter() - started)


def refusal(state: GatewayState, outcome: Outcome, model: str) -> Response:
    if outcome is Outcome.empty:
        return openai_error(
            400, "`model` must name a model.", "invalid_request_error", param="model"
        )
    if outcome is Outcome.no_routing:
        return openai_error(
            503,
            f"The gateway has no routing for {state.settings.environment!r} yet.",
            "server_error",
            "no_routing",
        )
    if outcome is Outcome.unrouted:
        return openai_error(
            503, f"No revision of `{model}` serves this request.", "server_error", "unrouted"
        )
    names = ", ".join(state.model_ids())
    return openai_error(
        404,
        f"The model `{model}` does not exist. Models served: {names}.",
        "invalid_request_error",
        "model_not_found",
        "model",
    )


def _model_routes(state: GatewayState) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [state.model_card(m) for m in state.model_ids()]}

    @router.get("/v1/models/{model:path}", response_model=None)
    async def model(model: str) -> Response:
        if model not in state.model_ids():
            return refusal(state, Outcome.unknown, model)
        return JSONResponse(state.model_card(model))

    return router


def _routing_routes(state: GatewayState) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/routing")
    async def routing() -> dict[str, Any]:
        return state.routing_document()

    @router.post("/v1/routing", response_model=None)
    async def push(request: Request) -> Response:
        if not state.admin_key:
            return openai_error(
                403, "Pushes are off: GATEWAY_ADMIN_KEY_FILE is unset.", "permission_error"
            )
        if not admits_bearer(state.admin_key, request.headers.get("authorization", "")):
            return openai_error(
                401, "Incorrect or missing admin key.", "invalid_request_error", "invalid_api_key"
            )
        try:
            document = json.loads(await request.body())
            accepted = state.apply(document if isinstance(document, dict) else None)
        except (ValueError, RoutingDocumentError) as exc:
            return openai_error(400, str(exc), "invalid_request_error")
        return JSONResponse({"accepted": accepted, "generation": state.generation()})

    @router.get("/v1/routing/gateway-api", response_model=None)
    async def gateway_api(
        format: str = "json", pool: str | None = None, namespace: str | None = None
    ) -> Response:
        table = state.applied.table if state.applied else None
        if table is None:
            return refusal(state, Outcome.no_routing, "")
        environment = state.settings.environment
        resources = inference_models(
            table, environment, pool=pool or environment, namespace=namespace
        )
        if format == "yaml":
            return Response(to_yaml(resources) + "\n", media_type="application/yaml")
        return JSONResponse(resources)

    return router


def _meta_routes(state: GatewayState) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "routing_generation": state.generation()}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(state.telemetry.exposition(), media_type="text/plain; version=0.0.4")

    return router
