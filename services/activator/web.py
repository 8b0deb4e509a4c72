"""The activator's HTTP endpoints.

For gateways: `GET /routing` (every environment) and `GET /routing/{environment}`, the same
documents replicas receive and the export file holds. For `adapterctl`, read-only views of
the activator's own tables (it changes them only through commands): an environment's
replicas and analysis settings, the answer to a command, an adapter's canaries and answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.activator.ports import ActivatorStore
from services.activator.routing import routing_document
from shared.registry.port import Catalogue
from shared.web import json_response


async def document_for(store: ActivatorStore, environment: str) -> dict[str, Any]:
    pointers, generation = await store.pointers(environment)
    return routing_document(
        environment, pointers, generation=generation, generated_at=datetime.now(UTC)
    )


def add_read_api(app: web.Application, store: ActivatorStore) -> None:
    """The activator's own state, read-only; every change goes through the commands topic."""

    async def replicas(request: web.Request) -> web.Response:
        environment = request.match_info["environment"]
        urls = await store.replicas(environment)
        return json_response({"environment": environment, "replicas": urls})

    async def analysis(request: web.Request) -> web.Response:
        environment = request.match_info["environment"]
        settings = await store.analysis_settings(environment)
        return json_response({"environment": environment, "settings": settings})

    async def outcome(request: web.Request) -> web.Response:
        found = await store.outcome(request.match_info["cause_id"])
        if found is None:
            return json_response({"detail": "no answer yet"}, status=404)
        return json_response(dict(found))

    async def rollout(request: web.Request) -> web.Response:
        adapter = request.match_info["adapter"]
        environment = request.query.get("environment") or None
        try:
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            return json_response({"detail": "limit is not a number"}, status=400)
        canaries = await store.canary_rows(adapter, environment)
        outcomes = await store.recent_outcomes(adapter, environment, max(1, min(limit, 100)))
        return json_response({"adapter": adapter, "canaries": canaries, "outcomes": outcomes})

    app.router.add_get("/environments/{environment}/replicas", replicas)
    app.router.add_get("/environments/{environment}/analysis", analysis)
    app.router.add_get("/outcomes/{cause_id}", outcome)
    app.router.add_get("/rollouts/{adapter}", rollout)


def make_app(store: ActivatorStore, catalogue: Catalogue) -> web.Application:
    async def every(_: web.Request) -> web.Response:
        names = {e.name for e in await catalogue.environments()}
        names |= set(await store.served_environments())
        documents = {name: await document_for(store, name) for name in sorted(names)}
        return web.json_response({"environments": documents})

    async def one(request: web.Request) -> web.Response:
        return web.json_response(await document_for(store, request.match_info["environment"]))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/routing", every)
    app.router.add_get("/routing/{environment}", one)
    app.router.add_get("/healthz", health)
    add_read_api(app, store)
    return app
