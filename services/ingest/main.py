"""Ingest's composition root: the only place its real dependencies are wired."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from services.ingest.adapters import LocalDirectorySource
from services.ingest.deps import IngestDeps
from services.ingest.handlers import FLOW, handlers
from services.ingest.settings import IngestSettings
from shared.artifacts import LocalArtifactStore
from shared.kafka.dispatch import Handler
from shared.service import Kernel, run_service
from shared.settings import read_at_start


def build_deps(kernel: Kernel, settings: IngestSettings) -> IngestDeps:
    return IngestDeps(
        registry=kernel.registry,
        store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
        source=LocalDirectorySource(list(settings.allowed_roots)),
        limits=settings.limits,
    )


def run(env: Mapping[str, str] | None = None) -> None:
    settings = read_at_start("ingest", IngestSettings, env)

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        return handlers(build_deps(kernel, settings))

    run_service(FLOW, build, env=env)
