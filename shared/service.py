"""The shell every service shares: settings, logs, codec, registry, relay and a consumer.

A service supplies its name, the topics it consumes and an async `build` that returns
its handlers once its dependencies are connected; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from shared.codec import Codec
from shared.kafka.app import FaustDeadLetters, attach_consumer, make_app, run_worker
from shared.kafka.dispatch import Dispatcher, Handler, PermanentError
from shared.lifecycle import InvalidTransition
from shared.logs import configure_logging
from shared.registry.relay import relay_from_settings
from shared.registry.store import Registry
from shared.settings import KernelSettings

log = structlog.get_logger(__name__)


@dataclass
class Kernel:
    """What every service's handlers may use."""

    settings: KernelSettings
    codec: Codec
    registry: Registry
    app: Any  # the faust app: timers, extra topics, web views


Build = Callable[[Kernel], Awaitable[Mapping[type, Handler]]]


def run_service(
    name: str,
    topics: Callable[[KernelSettings], Sequence[str]],
    build: Build,
    *,
    env: Mapping[str, str] | None = None,
    run_relay: bool | None = None,
) -> None:
    """Run `name` until SIGTERM: consume `topics(settings)` in order, one event at a time."""
    settings = KernelSettings.from_env(name, env)
    consumed = list(topics(settings))
    configure_logging(name, fmt=settings.log_format, level=settings.log_level)
    app = make_app(settings)
    codec = Codec.from_env()
    handlers: dict[type, Handler] = {}
    ready = asyncio.Event()
    dispatcher = Dispatcher(
        service=name,
        codec=codec,
        handlers=handlers,
        dead_letters=FaustDeadLetters(app),
        # An illegal transition stays illegal: dead-letter it with the reason, at once.
        permanent=(PermanentError, InvalidTransition),
    )
    relay_wanted = settings.run_relay if run_relay is None else run_relay

    async def start() -> None:
        registry = await Registry.connect(settings.database_url, codec)
        kernel = Kernel(settings=settings, codec=codec, registry=registry, app=app)
        handlers.update(await build(kernel))
        ready.set()
        log.info("service_ready", topics=consumed, handles=[t.__name__ for t in handlers])
        if relay_wanted:
            # Any instance may lead the relay; the others stand by on the advisory lock.
            await relay_from_settings(settings).run(asyncio.Event())

    app.task(start)

    attach_consumer(app, consumed, dispatcher, name=f"{name}.consumer", ready=ready)
    sys.argv = [sys.argv[0], "worker"]
    run_worker(app, loglevel=settings.log_level)
