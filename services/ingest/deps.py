"""What ingest's handlers are given: the registry, the artifact store, where trained
folders are read from, and the bounds on what is read."""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.ports import ArtifactSource, Limits
from shared.artifacts import ArtifactStore
from shared.registry.port import Registry


@dataclass
class IngestDeps:
    registry: Registry
    store: ArtifactStore
    source: ArtifactSource
    limits: Limits
