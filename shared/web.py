"""The small aiohttp pieces services' read APIs share: JSON with timestamps, and starting
a server on a host and port (0: none)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial

from aiohttp import web


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
