"""What the evaluator's handler is given: the registry, the catalogue, the artifact store,
the model runtimes, the golden suites and load profiles, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from services.gpu_evaluator.ports import BackendProvider
from shared.artifacts import ArtifactStore
from shared.registry.port import Catalogue, Registry


@dataclass
class EvaluatorDeps:
    registry: Registry
    catalogue: Catalogue
    store: ArtifactStore
    backends: BackendProvider
    suites_root: Path
    load_profiles_root: Path | None = None
    report_max_bytes: int = 64 << 20
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
