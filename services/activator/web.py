"""The activator's HTTP endpoints.

For gateways: `GET /routing` (every environment) and `GET /routing/{environment}`, the same
documents replicas receive and the export file holds. For `adapterctl`, views of the
activator's own tables (an environment's replicas and analysis settings, the answer to a
command, an adapter's canaries and answers, every canary's progress: `GET /canaries`), and
what an operator or admin proven by a bearer token may ask: an environment's replicas and
analysis settings (carried out at once) and rollout commands (promote, expand, rollback,
abort), which this API issues to the commands topic with the token's principal as their
actor and answers 202 with the command's id; the answer is then served under
`/outcomes/{command_id}`. Nobody else can write that topic (its ACLs), and where a command
is carried out its actor is checked again against the registry's principals, so a
principal revoked in between is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.activator.analysis import AnalysisPolicy
from services.activator.commands import on_set_canary_analysis, on_set_replicas
from services.activator.deps import ActivatorDeps
from services.activator.ports import ActivatorStore
from services.activator.progress import canary_progress
from services.activator.routing import routing_document
from shared.events import (
    AbortCanary,
    CommandHeader,
    ExpandCanary,
    PromoteRevision,
    RollbackRevision,
    SetCanaryAnalysis,
    SetReplicas,
)
from shared.registry.port import Catalogue
from shared.registry.principals import Lookup, Role
from shared.web import (
    authorized,
    carry_out,
    header_for,
    json_body,
    json_response,
    refusal,
    text_field,
    whole_field,
)


async def document_for(store: ActivatorStore, environment: str) -> dict[str, Any]:
    pointers, generation = await store.pointers(environment)
    return routing_document(
        environment, pointers, generation=generation, generated_at=datetime.now(UTC)
    )


async def canaries_in(
    store: ActivatorStore, catalogue: Catalogue, environment: str | None, now: datetime
) -> list[dict[str, Any]]:
    """Every canary being observed (in `environment`, or every one) with its progress."""
    rows = await store.canary_rows(None, environment)
    policies: dict[str, AnalysisPolicy] = {}
    for name in sorted({row["environment"] for row in rows}):
        spec = await catalogue.environment(name)
        settings = await store.analysis_settings(name)
        policies[name] = AnalysisPolicy.from_settings(spec.canary_steps if spec else (), settings)
    return [canary_progress(row, policies[row["environment"]], now) for row in rows]


def add_read_api(app: web.Application, store: ActivatorStore, catalogue: Catalogue) -> None:
    """The activator's own state, read by anyone who reaches it."""

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

    async def canaries(request: web.Request) -> web.Response:
        environment = request.query.get("environment") or None
        found = await canaries_in(store, catalogue, environment, datetime.now(UTC))
        return json_response({"canaries": found})

    app.router.add_get("/rollouts/{adapter}", rollout)
    app.router.add_get("/canaries", canaries)


OPERATORS = (Role.OPERATOR, Role.ADMIN)

# Puts a command on the commands topic, keyed by the string given (its adapter).
Issue = Callable[[Any, str], Awaitable[None]]


def _optional_text(body: Mapping[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else text_field(body, key)


def rollout_command(action: str, body: Mapping[str, Any], header: CommandHeader) -> Any:
    """The command `action` asks for, from the request's JSON body; 400 naming a bad field,
    404 for an action that does not exist."""
    if action == "promote":
        tenants = body.get("tenants", [])
        if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
            raise refusal(web.HTTPBadRequest, "tenants must be a list of strings")
        return PromoteRevision(
            header=header,
            revision=text_field(body, "revision"),
            canary_percent=whole_field(body, "canary_percent"),
            tenants=tenants,
        )
    if action == "expand":
        percent = whole_field(body, "traffic_percent")
        return ExpandCanary(
            header=header, revision=text_field(body, "revision"), traffic_percent=percent
        )
    if action == "rollback":
        return RollbackRevision(header=header, to_revision=_optional_text(body, "to_revision"))
    if action == "abort":
        return AbortCanary(header=header, revision=text_field(body, "revision"))
    raise refusal(web.HTTPNotFound, f"no command {action!r}: promote, expand, rollback or abort")


def add_write_api(app: web.Application, deps: ActivatorDeps, lookup: Lookup, issue: Issue) -> None:
    """Which replicas serve an environment and how its canaries are judged: changed by the
    token's principal, carried out by the same handlers as every command; and rollout
    commands, issued to the commands topic as the token's principal."""

    async def command(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, OPERATORS)
        body = await json_body(request)
        adapter = text_field(body, "adapter")
        header = header_for(
            principal,
            adapter=adapter,
            environment=text_field(body, "environment"),
            reason=text_field(body, "reason", ""),
        )
        await issue(rollout_command(request.match_info["action"], body, header), adapter)
        return json_response(
            {"command_id": header.command_id, "principal": principal.name}, status=202
        )

    def answer_to(header: CommandHeader) -> Callable[[], Awaitable[Mapping[str, Any] | None]]:
        return lambda: deps.store.outcome(header.command_id)

    async def set_replicas(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, OPERATORS)
        body = await json_body(request)
        urls = body.get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise refusal(web.HTTPBadRequest, "urls must be a list of strings")
        header = header_for(principal, adapter="", environment=request.match_info["environment"])
        command = SetReplicas(header=header, urls=urls)
        return await carry_out(on_set_replicas(command, deps), answer_to(header))

    async def set_analysis(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, OPERATORS)
        body = await json_body(request)
        settings = body.get("settings")
        if not isinstance(settings, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in settings.items()
        ):
            raise refusal(web.HTTPBadRequest, "settings must map names to strings")
        header = header_for(principal, adapter="", environment=request.match_info["environment"])
        command = SetCanaryAnalysis(header=header, settings=settings)
        return await carry_out(on_set_canary_analysis(command, deps), answer_to(header))

    app.router.add_put("/environments/{environment}/replicas", set_replicas)
    app.router.add_put("/environments/{environment}/analysis", set_analysis)
    app.router.add_post("/commands/{action}", command)


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
    add_read_api(app, store, catalogue)
    return app
