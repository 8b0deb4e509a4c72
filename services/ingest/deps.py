"""What ingest's handlers are given: the registry, the artifact store, where trained
folders are read from, the bounds on what is read, and the roles a principal holds now
(the registry's principals: a submitter must hold an active trainer token)."""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.ports import ArtifactSource, Limits
from shared.artifacts import ArtifactStore
from shared.registry.port import Registry
from shared.registry.principals import Roles


@dataclass
class IngestDeps:
    registry: Registry
    store: ArtifactStore
    source: ArtifactSource
    limits: Limits
    roles_of: Roles
