"""The activator's composition root: replicas, fleet, handlers, the analysis timer and the
routing endpoint. Nothing connects before `run()`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog

from services.activator.adapters import VllmTarget, key_file
from services.activator.canary import tick
from services.activator.deps import ActivatorDeps
from services.activator.fleet import Fleet, ReplicasUnreachable
from services.activator.handlers import FLOW, handlers
from services.activator.metrics_sources import PrometheusMetrics, gateway_metrics, gateway_pages
from services.activator.migrations import MIGRATIONS
from services.activator.ports import MetricsSource
from services.activator.settings import ActivatorSettings, MetricsSourceKind
from services.activator.stalls import Stalls
from services.activator.store import PostgresActivatorStore
from services.activator.web import Issue, add_write_api, make_app
from shared.artifacts import LocalArtifactStore
from shared.backoff import Backoff
from shared.decisions import key_reader
from shared.kafka.dispatch import Handler
from shared.kafka.producer import make_producer, publish
from shared.manifest import Manifest
from shared.registry.migrate import migrate_pool
from shared.registry.principals import lookup_in, persons_in, roles_in
from shared.service import Kernel, run_service
from shared.settings import read_at_start
from shared.web import start_web

log = structlog.get_logger(__name__)


def serving_paths(artifacts: LocalArtifactStore, serving_root: str) -> Callable[[Manifest], str]:
    """Where replicas find a revision's folder: the store's path, under their own mount."""
    local_root = artifacts.root.resolve()

    def path_for(manifest: Manifest) -> str:
        folder = artifacts.revision_dir(manifest).resolve()
        if not serving_root:
            return str(folder)
        return str(Path(serving_root) / folder.relative_to(local_root))

    return path_for


def metrics_source(
    settings: ActivatorSettings, client: httpx.AsyncClient, fleet: Fleet
) -> MetricsSource:
    """The source canary analysis reads: the fleet's replicas (its default), the
    environment's gateways (the catalogue's, or the page a setting names), or Prometheus."""
    match settings.metrics_source:
        case MetricsSourceKind.gateway:
            pages = gateway_pages(fleet.gateways, settings.gateway_metrics_url, client)
            return gateway_metrics(pages)
        case MetricsSourceKind.prometheus:
            return PrometheusMetrics(settings.prometheus_url, client)
        case MetricsSourceKind.replicas:
            return fleet.metrics


def command_issuer(kernel: Kernel) -> Issue:
    """Put a command on the commands topic, keyed by its adapter, as this service's Kafka
    principal: the only one the topic's ACLs let write it (shared/kafka/acl.py)."""
    producer = make_producer(kernel.settings.kafka())
    topic = kernel.settings.commands_topic

    async def issue(command: Any, key: str) -> None:
        value = kernel.codec.encode(command)
        await asyncio.to_thread(publish, producer, topic, key=key.encode(), value=value)

    return issue


def start_timer(app: Any, deps: ActivatorDeps, interval_s: float) -> None:
    """The faust timer, started here because the app is already running when services build."""

    async def analyse() -> None:
        await tick(deps)

    app.add_future(app.timer(interval_s, name="activator.analysis")(analyse)())


def run(env: Mapping[str, str] | None = None) -> None:
    settings = read_at_start("activator", ActivatorSettings, env)

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        await migrate_pool(kernel.pool, MIGRATIONS)
        client = httpx.AsyncClient(timeout=settings.target_timeout_s)
        store = PostgresActivatorStore(kernel.pool)
        catalogue = kernel.catalogue
        artifacts = LocalArtifactStore(Path(kernel.settings.artifact_root))
        fleet = Fleet(
            store,
            lambda url, environment: VllmTarget(
                url, client, api_key=key_file(settings.replica_keys_dir, environment)
            ),
            retry=Backoff(
                settings.load_attempts, settings.load_backoff_s, settings.load_backoff_max_s
            ),
            routing_dir=settings.routing_dir,
            catalogue=catalogue,
            make_gateway=lambda url, environment: VllmTarget(
                url, client, api_key=key_file(settings.gateway_keys_dir, environment)
            ),
        )
        # Once the fleet exists: the gateway source reads the gateways it knows.
        fleet.metrics = metrics_source(settings, client, fleet)
        deps = ActivatorDeps(
            registry=kernel.registry,
            catalogue=catalogue,
            store=store,
            artifacts=artifacts,
            fleet=fleet,
            serving_path=serving_paths(artifacts, settings.serving_artifact_root),
            roles_of=roles_in(kernel.pool),
            persons_of=persons_in(kernel.pool),
            decision_keys=key_reader(kernel.settings.decision_public_keys),
            stalls=Stalls(
                settings.stall_after_s, kernel.metrics.registry if kernel.metrics else None
            ),
        )
        runner = None
        if settings.http_port:
            app = make_app(store, catalogue)
            issue = command_issuer(kernel)
            add_write_api(app, deps, lookup_in(kernel.pool), issue)
            runner = await start_web(app, settings.http_host, settings.http_port)
            log.info("http_listening", url=f"http://{settings.http_host}:{settings.http_port}/")

        async def stop(_app: Any, **_kwargs: Any) -> None:
            if runner is not None:
                await runner.cleanup()
            await client.aclose()

        kernel.app.on_before_shutdown.connect(stop, weak=False)
        start_timer(kernel.app, deps, settings.analysis_interval_s)
        log.info(
            "activator_ready",
            analysis_interval_s=settings.analysis_interval_s,
            metrics_source=settings.metrics_source.value,
        )
        return handlers(deps)

    run_service(FLOW, build, env=env, outages=(ReplicasUnreachable,))
