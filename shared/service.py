"""The shell every service shares: settings, logs, codec, registry, relay and a consumer.

A service supplies its name, the topics it consumes and an async `build` that returns
its handlers once its dependencies are connected; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from shared.codec import Codec
from shared.flow import ServiceFlow
from shared.kafka.app import FaustDeadLetters, attach_consumer, make_app, run_worker
from shared.kafka.dispatch import Dispatcher, Handler, PermanentError
from shared.lifecycle import InvalidTransition
from shared.logs import configure_logging
from shared.observability import (
    Health,
    KafkaProbe,
    LagReader,
    Metrics,
    postgres_probe,
    serve,
    watch,
)
from shared.registry.catalogue_store import PostgresCatalogue
from shared.registry.port import Registry
from shared.registry.relay import relay_from_settings
from shared.registry.store import UNAVAILABLE, PostgresRegistry
from shared.settings import KernelSettings, exit_on_bad_settings

log = structlog.get_logger(__name__)


@dataclass
class Kernel:
    """What a service's composition root (`main.py`) wires its handlers with.

    Handlers see `registry` (the port) and `catalogue`; `pool` is for the composition root
    alone, to give the service's own storage adapter its connections.
    """

    settings: KernelSettings
    codec: Codec
    registry: Registry
    catalogue: PostgresCatalogue
    pool: Any  # asyncpg.Pool shared with the registry
    app: Any  # the faust app: timers, extra topics, web views
    metrics: Metrics | None = None  # the process's Prometheus metrics


Build = Callable[[Kernel], Awaitable[Mapping[type, Handler]]]


def run_service(
    flow: ServiceFlow,
    build: Build,
    *,
    env: Mapping[str, str] | None = None,
    run_relay: bool | None = None,
    outages: tuple[type[Exception], ...] = (),
) -> None:
    """Run `flow.service` until SIGTERM: consume its topics in order, one event at a time.

    The handler map `build` returns must handle exactly the types the flow declares.
    `outages` names the service's own dependencies' outages, waited out like PostgreSQL's.
    """
    name = flow.service
    with exit_on_bad_settings(name):
        settings = KernelSettings.from_env(name, env)
        kafka = settings.kafka()
    consumed = flow.topics(settings)
    configure_logging(name, fmt=settings.log_format, level=settings.log_level)
    # Health and metrics are served by our own small server (below), not faust's web.
    app = make_app(settings, web_enabled=False)
    codec = Codec.from_settings(settings.schemas)
    handlers: dict[type, Handler] = {}
    ready = asyncio.Event()
    metrics = Metrics(name)
    registries: list[PostgresRegistry] = []
    dispatcher = Dispatcher(
        service=name,
        codec=codec,
        handlers=handlers,
        dead_letters=FaustDeadLetters(app),
        # An illegal transition stays illegal: dead-letter it with the reason, at once.
        permanent=(PermanentError, InvalidTransition),
        # PostgreSQL restarting is waited out: the events in flight are handled after it.
        unavailable=UNAVAILABLE + outages,
        observer=metrics,
    )
    relay_wanted = settings.run_relay if run_relay is None else run_relay
    relay = relay_from_settings(settings) if relay_wanted else None
    if relay is not None:
        metrics.follow_relay(lambda: relay.is_leader)

    async def start() -> None:
        registry = await PostgresRegistry.connect(settings.database_url, codec)
        registries.append(registry)
        kernel = Kernel(
            settings=settings,
            codec=codec,
            registry=registry,
            catalogue=PostgresCatalogue(registry.pool),
            pool=registry.pool,
            app=app,
            metrics=metrics,
        )
        built = await build(kernel)
        if set(built) != set(flow.handles):
            raise RuntimeError(
                f"{name}: its handler map ({sorted(t.__name__ for t in built)}) differs from "
                f"its FLOW ({sorted(t.__name__ for t in flow.handles)})"
            )
        handlers.update(built)
        ready.set()
        log.info("service_ready", topics=consumed, handles=[t.__name__ for t in handlers])
        if relay is not None:
            # Any instance may lead the relay; the others stand by on the advisory lock.
            await relay.run(asyncio.Event())

    async def observe() -> None:
        health = Health(
            metrics,
            built=ready.is_set,
            probes={
                "postgres": postgres_probe(lambda: registries[0].pool if registries else None),
                "kafka": KafkaProbe(kafka),
            },
        )
        runner = await serve(app.conf.web_host, settings.web_port, metrics, health)
        reader = LagReader(kafka, app.conf.id, consumed)
        try:
            await watch(metrics, health, reader)
        finally:
            await runner.cleanup()

    app.task(start)
    if settings.web_port > 0:
        app.task(observe)

    attach_consumer(app, consumed, dispatcher, name=f"{name}.consumer", ready=ready)
    sys.argv = [sys.argv[0], "worker"]
    run_worker(app, loglevel=settings.log_level, stop_within_s=settings.shutdown_grace_s)
