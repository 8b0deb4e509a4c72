"""What the validator's handler is given: the registry, the catalogue, the artifact store."""

from __future__ import annotations

from dataclasses import dataclass

from shared.artifacts import ArtifactStore
from shared.registry.port import Catalogue, Registry


@dataclass
class ValidatorDeps:
    registry: Registry
    catalogue: Catalogue
    store: ArtifactStore
