"""The approval service's composition root: one process runs the lifecycle consumer that
feeds its read model (the kernel's `run_service`) and, beside it, the HTTP server.

The HTTP server is a task on the consumer's event loop; the faust worker owns the
signals, and on shutdown it stops the server before it stops itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from services.approval.app import create_app
from services.approval.deciding import Decider
from services.approval.deps import WebDeps
from services.approval.evidence import EvidenceSources
from services.approval.handlers import FLOW, handlers
from services.approval.migrations import MIGRATIONS
from services.approval.projection import PostgresProjection, believer
from services.approval.readmodel import ReadModel
from services.approval.sessions import PostgresSessions
from services.approval.settings import ApprovalSettings
from shared.artifacts import LocalArtifactStore
from shared.decisions import key_reader
from shared.kafka.dispatch import Handler
from shared.registry.migrate import migrate_pool
from shared.registry.principals import lookup_by_hash_in, lookup_in, persons_in
from shared.service import Kernel, run_service
from shared.settings import read_at_start
from shared.signing import Signer, load_or_create_signer, public_path

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the faust worker handles SIGTERM and stops us through on_before_shutdown


def build_web(kernel: Kernel, settings: ApprovalSettings, signer: Signer) -> WebDeps:
    registry, catalogue = kernel.registry, kernel.catalogue
    reads = ReadModel(kernel.pool, registry)
    return WebDeps(
        registry=registry,
        readmodel=reads,
        catalogue=catalogue,
        decider=Decider(
            registry=registry,
            readmodel=reads,
            catalogue=catalogue,
            signer=signer,
            persons=persons_in(kernel.pool),
        ),
        sources=EvidenceSources(
            registry=registry,
            readmodel=reads,
            catalogue=catalogue,
            store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
            max_report_bytes=settings.max_report_bytes,
        ),
        signer=signer,
        lookup=lookup_in(kernel.pool),
        lookup_hash=lookup_by_hash_in(kernel.pool),
        sessions=PostgresSessions(kernel.pool),
        public_url=settings.public_url,
        session_ttl_s=settings.session_ttl_s,
    )


def serve(kernel: Kernel, deps: WebDeps, settings: ApprovalSettings) -> None:
    """Bind now (a taken port fails the start loudly), then serve as a task on this loop."""
    sock = socket.create_server((settings.http_host, settings.http_port), reuse_port=False)
    config = uvicorn.Config(
        create_app(deps), log_config=None, access_log=False, lifespan="off", server_header=False
    )
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))

    async def stop(_app: Any, **_kwargs: Any) -> None:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=10)

    kernel.app.on_before_shutdown.connect(stop, weak=False)
    host, port = sock.getsockname()[:2]
    log.info("http_listening", url=f"http://{host}:{port}/", key_id=deps.signer.key_id)


def run(env: Mapping[str, str] | None = None) -> None:
    settings = read_at_start("approval", ApprovalSettings, env)
    signer = load_or_create_signer(settings.signing_key)

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        await migrate_pool(kernel.pool, MIGRATIONS)
        deps = build_web(kernel, settings, signer)
        serve(kernel, deps, settings)
        log.info(
            "signing_key_ready",
            key_id=signer.key_id,
            public_key=str(public_path(settings.signing_key)),
        )
        keys = key_reader(kernel.settings.decision_public_keys, [signer.public_key])
        return handlers(PostgresProjection(kernel.pool), believer(kernel.registry, keys))

    run_service(FLOW, build, env=env)
