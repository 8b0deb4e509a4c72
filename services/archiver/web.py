"""The archiver's HTTP API for `adapterctl`: retention policies and legal holds in force,
read by anyone who reaches it, and changed only by an admin proven by a bearer token.

A change is carried out by the same command handlers (`commands.py`) whatever the caller
said: the actor recorded with the answer is the token's principal, never a typed name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from services.archiver.commands import (
    on_place_legal_hold,
    on_release_legal_hold,
    on_set_retention_policy,
)
from services.archiver.deps import ArchiverDeps
from services.archiver.store import PostgresRetentionRules
from shared.events import PlaceLegalHold, ReleaseLegalHold, SetRetentionPolicy
from shared.registry.principals import Lookup, Role
from shared.web import (
    authorized,
    carry_out,
    header_for,
    json_body,
    json_response,
    text_field,
    whole_field,
)

ADMINS = (Role.ADMIN,)


def add_write_api(app: web.Application, deps: ArchiverDeps, lookup: Lookup) -> None:
    """Retention policies and legal holds, changed by an authenticated admin."""

    def answer_to(command: Any) -> Callable[[], Awaitable[Mapping[str, Any] | None]]:
        return lambda: deps.rules.outcome(command.header.command_id)

    async def set_policy(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, ADMINS)
        body = await json_body(request)
        header = header_for(
            principal,
            adapter=text_field(body, "adapter", ""),
            environment=text_field(body, "environment"),
            reason=text_field(body, "reason", ""),
        )
        command = SetRetentionPolicy(
            header=header,
            keep_superseded=whole_field(body, "keep_superseded"),
            min_age_days=whole_field(body, "min_age_days"),
        )
        return await carry_out(on_set_retention_policy(command, deps), answer_to(command))

    def hold_route(
        kind: type[PlaceLegalHold] | type[ReleaseLegalHold],
        handle: Callable[[Any, ArchiverDeps], Awaitable[None]],
        reason_required: bool,
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            principal = await authorized(request, lookup, ADMINS)
            body = await json_body(request)
            reason = text_field(body, "reason", None if reason_required else "")
            header = header_for(
                principal, adapter=text_field(body, "adapter"), environment="", reason=reason
            )
            command = kind(header=header, revision=text_field(body, "revision"))
            return await carry_out(handle(command, deps), answer_to(command))

        return route

    app.router.add_put("/retention", set_policy)
    app.router.add_post("/holds", hold_route(PlaceLegalHold, on_place_legal_hold, True))
    app.router.add_post(
        "/holds/release", hold_route(ReleaseLegalHold, on_release_legal_hold, False)
    )


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
