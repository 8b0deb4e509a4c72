"""The activator's HTTP endpoint for gateways: `GET /routing` (every environment) and
`GET /routing/{environment}`, the same documents replicas receive and the export file holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.activator.routing import routing_document
from services.activator.store import ActivatorStore
from shared.registry.port import Catalogue


async def document_for(store: ActivatorStore, environment: str) -> dict[str, Any]:
    pointers, generation = await store.pointers(environment)
    return routing_document(
        environment, pointers, generation=generation, generated_at=datetime.now(UTC)
    )


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
    return app


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
