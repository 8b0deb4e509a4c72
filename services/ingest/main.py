"""Ingest's composition root: the only place its real dependencies are wired."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from services.ingest.adapters import LocalDirectorySource
from services.ingest.deps import IngestDeps
from services.ingest.handlers import FLOW, handlers
from services.ingest.settings import IngestSettings
from services.ingest.store import RegistryReads
from services.ingest.web import Publish, make_app
from shared.artifacts import LocalArtifactStore
from shared.events import AdapterTrained
from shared.kafka.dispatch import Handler
from shared.kafka.producer import make_producer, publish
from shared.registry.principals import lookup_in, roles_in
from shared.service import Kernel, run_service
from shared.settings import read_at_start
from shared.web import start_web

log = structlog.get_logger(__name__)


def build_deps(kernel: Kernel, settings: IngestSettings) -> IngestDeps:
    return IngestDeps(
        registry=kernel.registry,
        store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
        source=LocalDirectorySource(list(settings.allowed_roots)),
        limits=settings.limits,
        roles_of=roles_in(kernel.pool),
    )


def trained_publisher(kernel: Kernel) -> Publish:
    """Put a submission on the trained topic as ingest's Kafka principal (the only writer)."""
    producer = make_producer(kernel.settings.kafka())
    topic = kernel.settings.trained_topic

    async def publish_one(event: AdapterTrained) -> tuple[int, int]:
        value = kernel.codec.encode(event)
        delivered = await asyncio.to_thread(
            publish, producer, topic, key=event.adapter.encode(), value=value
        )
        return delivered.partition() or 0, delivered.offset() or 0

    return publish_one


def run(env: Mapping[str, str] | None = None) -> None:
    settings = read_at_start("ingest", IngestSettings, env)

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        if settings.http_port:
            reads = RegistryReads(kernel.pool, kernel.registry, kernel.catalogue, kernel.codec)
            app = make_app(lookup_in(kernel.pool), trained_publisher(kernel), kernel.codec, reads)
            runner = await start_web(app, settings.http_host, settings.http_port)
            log.info("http_listening", url=f"http://{settings.http_host}:{settings.http_port}/")

            async def stop(_app: Any, **_kwargs: Any) -> None:
                await runner.cleanup()

            kernel.app.on_before_shutdown.connect(stop, weak=False)
        return handlers(build_deps(kernel, settings))

    run_service(FLOW, build, env=env)
