"""Validator's composition root."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from services.validator.handlers import ValidatorDeps, handlers
from shared.artifacts import LocalArtifactStore
from shared.kafka.dispatch import Handler
from shared.registry.catalogue_store import Catalogue
from shared.service import Kernel, run_service


def run() -> None:
    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        deps = ValidatorDeps(
            registry=kernel.registry,
            catalogue=Catalogue(kernel.registry.pool),
            store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
        )
        return handlers(deps)

    run_service("validator", lambda settings: [settings.lifecycle_topic], build)
