"""Ingest's composition root: the only place its real dependencies are wired."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from services.ingest.adapters import LocalDirectorySource
from services.ingest.handlers import IngestDeps, handlers
from services.ingest.ports import Limits
from shared.artifacts import LocalArtifactStore
from shared.kafka.dispatch import Handler
from shared.service import Kernel, run_service


def limits_from_env(env: Mapping[str, str]) -> Limits:
    defaults = Limits()
    return Limits(
        max_file_bytes=int(env.get("INGEST_MAX_FILE_BYTES", defaults.max_file_bytes)),
        max_total_bytes=int(env.get("INGEST_MAX_TOTAL_BYTES", defaults.max_total_bytes)),
        max_files=int(env.get("INGEST_MAX_FILES", defaults.max_files)),
    )


def build_deps(kernel: Kernel, env: Mapping[str, str]) -> IngestDeps:
    roots = [Path(p) for p in env.get("INGEST_ALLOWED_ROOTS", "var/incoming").split(":") if p]
    return IngestDeps(
        registry=kernel.registry,
        store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
        source=LocalDirectorySource(roots),
        limits=limits_from_env(env),
    )


def run() -> None:
    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        return handlers(build_deps(kernel, os.environ))

    run_service("ingest", lambda settings: [settings.trained_topic], build)
