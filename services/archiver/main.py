"""Archiver's composition root: the sweep timer, the lifecycle handlers, their dependencies."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from services.archiver.deps import ArchiverDeps
from services.archiver.faults import crash_after
from services.archiver.handlers import FLOW, handlers, sweep
from services.archiver.migrations import MIGRATIONS
from services.archiver.scrub import ScrubCursor, scrub_tick
from services.archiver.settings import ArchiverSettings
from services.archiver.store import PostgresRetentionRules
from services.archiver.web import add_write_api, make_app
from shared.artifacts import LocalArtifactStore
from shared.coldstore import ColdStorageError, open_cold_storage
from shared.kafka.dispatch import Handler
from shared.registry.migrate import migrate_pool
from shared.registry.principals import lookup_in
from shared.registry.store import UNAVAILABLE
from shared.service import Kernel, run_service
from shared.settings import read_at_start
from shared.web import start_web

log = structlog.get_logger(__name__)

# What a sweep waits out (ADR 0008): the registry restarting, cold storage away. A bug
# propagates, crashes the service, and its supervisor restarts it.
SWEEP_OUTAGES: tuple[type[Exception], ...] = (*UNAVAILABLE, ColdStorageError)


async def sweep_waiting_out_outages(deps: ArchiverDeps) -> None:
    """One sweep; an outage is logged and left to the next tick, a bug propagates."""
    try:
        await sweep(deps)
    except SWEEP_OUTAGES as exc:
        log.error("sweep_failed", error=repr(exc))


def start_sweeps(app: Any, deps: ArchiverDeps, interval_s: float) -> None:
    """Sweep once now (to finish what a crashed run left) and then every `interval_s`.

    The app is already running when services build, so the faust timer is started here
    rather than by the worker (which starts only the tasks declared before it started).
    """

    async def sweep_once() -> None:
        await sweep_waiting_out_outages(deps)

    timer = app.timer(interval_s, name="archiver.sweep")(sweep_once)
    app.add_future(sweep_once())
    app.add_future(timer())


def start_scrubs(app: Any, deps: ArchiverDeps, interval_s: float, budget_bytes: int) -> None:
    """A scrub tick every `interval_s`, each re-hashing up to `budget_bytes` of the store."""
    cursor = ScrubCursor()

    async def scrub_once() -> None:
        try:
            async with deps.lock:  # never beside an archive or a deletion of the same bytes
                tick = await scrub_tick(deps, cursor, budget_bytes)
        except UNAVAILABLE as exc:
            log.error("scrub_failed", error=repr(exc))
            return
        if tick.quarantined or tick.pass_completed:
            log.info(
                "scrub_tick",
                scanned=len(tick.scanned),
                bytes_read=tick.bytes_read,
                quarantined=tick.quarantined,
                pass_completed=tick.pass_completed,
                passes=cursor.passes,
            )

    timer = app.timer(interval_s, name="archiver.scrub")(scrub_once)
    app.add_future(timer())


async def serve_api(
    kernel: Kernel, deps: ArchiverDeps, rules: PostgresRetentionRules, host: str, port: int
) -> None:
    """The API adapterctl calls (reads for anyone, changes for an admin's token), stopped
    before the worker stops."""
    app = make_app(rules)
    add_write_api(app, deps, lookup_in(kernel.pool))
    runner = await start_web(app, host, port)
    log.info("http_listening", url=f"http://{host}:{port}/")

    async def stop(_app: Any, **_kwargs: Any) -> None:
        await runner.cleanup()

    kernel.app.on_before_shutdown.connect(stop, weak=False)


def run(env: Mapping[str, str] | None = None) -> None:
    settings = read_at_start("archiver", ArchiverSettings, env)

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        await migrate_pool(kernel.pool, MIGRATIONS)
        rules = PostgresRetentionRules(kernel.pool)
        deps = ArchiverDeps(
            registry=kernel.registry,
            rules=rules,
            store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
            cold=open_cold_storage(settings.cold_storage),
            crash=crash_after(settings.crash_after),
            metrics=kernel.metrics,
        )
        if settings.http_port:
            await serve_api(kernel, deps, rules, settings.http_host, settings.http_port)
        start_sweeps(kernel.app, deps, settings.sweep_interval_s)
        start_scrubs(kernel.app, deps, settings.scrub_interval_s, settings.scrub_bytes_per_tick)
        log.info(
            "archiver_ready",
            cold_storage=settings.cold_storage.url,
            sweep_interval_s=settings.sweep_interval_s,
        )
        return handlers(deps)

    run_service(FLOW, build, env=env)
