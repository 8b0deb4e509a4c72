"""The archiver's read API for `adapterctl`: retention policies, legal holds in force, and
its answers to retention commands. Read-only: every change goes through the commands topic."""

from __future__ import annotations

from aiohttp import web

from services.archiver.store import PostgresRetentionRules
from shared.web import json_response


def make_app(rules: PostgresRetentionRules) -> web.Application:
    async def policies(request: web.Request) -> web.Response:
        environment = request.query.get("environment") or None
        return json_response({"policies": await rules.policy_rows(environment)})

    async def holds(request: web.Request) -> web.Response:
        adapter = request.query.get("adapter") or None
        return json_response({"holds": await rules.hold_rows(adapter)})

    async def outcome(request: web.Request) -> web.Response:
        found = await rules.outcome(request.match_info["cause_id"])
        if found is None:
            return json_response({"detail": "no answer yet"}, status=404)
        return json_response(dict(found))

    async def health(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/retention", policies)
    app.router.add_get("/holds", holds)
    app.router.add_get("/outcomes/{cause_id}", outcome)
    app.router.add_get("/healthz", health)
    return app
