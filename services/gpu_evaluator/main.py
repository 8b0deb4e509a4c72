"""Evaluator's composition root: settings, the backend provider, the handler's deps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from services.gpu_evaluator.backends import backends_from_settings
from services.gpu_evaluator.deps import EvaluatorDeps
from services.gpu_evaluator.handlers import FLOW, handlers
from services.gpu_evaluator.ports import BackendProvider
from services.gpu_evaluator.settings import EvaluatorSettings
from shared.artifacts import LocalArtifactStore
from shared.kafka.dispatch import Handler
from shared.service import Kernel, run_service
from shared.settings import read_at_start

Wrap = Callable[[BackendProvider], BackendProvider]


def build_deps(
    kernel: Kernel, settings: EvaluatorSettings, *, backends: BackendProvider | None = None
) -> EvaluatorDeps:
    return EvaluatorDeps(
        registry=kernel.registry,
        catalogue=kernel.catalogue,
        store=LocalArtifactStore(Path(kernel.settings.artifact_root)),
        backends=backends or backends_from_settings(settings),
        suites_root=settings.suites_root,
        load_profiles_root=settings.load_profiles_root,
        report_max_bytes=settings.report_max_bytes,
    )


def run(*, env: Mapping[str, str] | None = None, wrap: Wrap | None = None) -> None:
    """Evaluate validated revisions until SIGTERM. `wrap` decorates the backend provider
    (a fault-injecting one in tests); the backends themselves load on first use."""
    settings = read_at_start("gpu_evaluator", EvaluatorSettings, env)

    async def build(kernel: Kernel) -> Mapping[type, Handler]:
        provider = backends_from_settings(settings)
        return handlers(build_deps(kernel, settings, backends=wrap(provider) if wrap else provider))

    run_service(FLOW, build, env=env)
