"""Validator's composition root."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from services.validator.deps import ValidatorDeps
from services.validator.handlers import FLOW, handlers
from services.validator.settings import ValidatorSettings
from shared.artifacts import LocalArtifactStore
from shared.kafka.dispatch import Handler
from shared.service import Kernel, run_service
from shared.settings import read_at_start


def run(env: Mapping[str, str] | None = None) -> None:
    read_at_start("validator", ValidatorSettings, env)  # nothing of its own yet: checked only

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        deps = ValidatorDeps(
            registry=kernel.registry,
            catalogue=kernel.catalogue,
            store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
        )
        return handlers(deps)

    run_service(FLOW, build, env=env)
