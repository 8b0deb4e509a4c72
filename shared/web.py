"""The small aiohttp pieces services' HTTP APIs share: JSON with timestamps, a principal
proven by its bearer token, and starting a server on a host and port (0: none)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from shared.events import Actor, CommandHeader
from shared.kafka.dispatch import PermanentError
from shared.registry.principals import Lookup, Principal, Role


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def json_response(data: object, status: int = 200) -> web.Response:
    """`data` as JSON; datetimes as ISO-8601 in UTC with their `Z`, anything else as text."""
    return web.json_response(data, status=status, dumps=partial(json.dumps, default=_plain))


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def refusal(error: type[web.HTTPException], detail: str, **headers: str) -> web.HTTPException:
    body = json.dumps({"status": error.status_code, "detail": detail})
    return error(text=body, content_type="application/json", headers=headers)


async def authorized(request: web.Request, lookup: Lookup, roles: Collection[Role]) -> Principal:
    """The principal whose bearer token the request carries, if it holds one of `roles`.

    401 without a token, or with one that is unknown or revoked; 403 for another role. The
    identity is the token's, never a name the request states.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refusal(
            web.HTTPUnauthorized,
            "a principal's bearer token is needed (adapterctl --token or ADAPTERCTL_TOKEN)",
            **{"WWW-Authenticate": "Bearer"},
        )
    principal = await lookup(token.strip())
    if principal is None:
        raise refusal(
            web.HTTPUnauthorized,
            "the token is unknown or revoked",
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if principal.role not in roles:
        wanted = " or ".join(sorted(r.value for r in roles))
        raise refusal(
            web.HTTPForbidden, f"{principal.name} acts as {principal.role.value}, not {wanted}"
        )
    return principal


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or 400 saying why not."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise refusal(web.HTTPBadRequest, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise refusal(web.HTTPBadRequest, "the body must be a JSON object")
    return body


def header_for(
    principal: Principal, *, adapter: str, environment: str, reason: str = ""
) -> CommandHeader:
    """A command's header whose actor is the authenticated principal."""
    now = datetime.now(UTC)
    return CommandHeader(
        command_id=str(uuid.uuid4()),
        adapter=adapter,
        environment=environment,
        actor=Actor(principal=principal.name, role=principal.role.value),
        issued_at=now,
        correlation_id=str(uuid.uuid4()),
        reason=reason,
    )


def text_field(body: Mapping[str, Any], key: str, default: str | None = None) -> str:
    """`body[key]` as a string (or `default` when absent), or 400 naming the field."""
    value = body.get(key, default)
    if not isinstance(value, str):
        raise refusal(web.HTTPBadRequest, f"{key} must be a string")
    return value


def whole_field(body: Mapping[str, Any], key: str) -> int:
    """`body[key]` as a whole number, or 400 naming the field."""
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise refusal(web.HTTPBadRequest, f"{key} must be a whole number")
    return value


async def carry_out(
    handle: Awaitable[None], answer: Callable[[], Awaitable[Mapping[str, Any] | None]]
) -> web.Response:
    """Run a command's handler, then serve the answer it recorded: 200 when committed,
    409 when refused (its reason in `detail`)."""
    with contextlib.suppress(PermanentError):  # refused: the recorded answer says why
        await handle
    recorded = await answer()
    if recorded is None:  # every handler answers what it handles: a bug if not
        raise RuntimeError("the command's handler recorded no answer")
    return json_response(dict(recorded), status=200 if recorded["outcome"] == "committed" else 409)
