"""What the activator's handlers and timers are given: the registry, the catalogue, its own
store, the artifact store, the replica fleet, where replicas read revisions, the roles a
principal holds now (the registry's principals), the keys whose signed decisions it
believes, the clock, and one lock per (adapter,
environment) so two rollouts of one environment never interleave."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.activator.fleet import Fleet
from services.activator.ports import ActivatorStore
from services.activator.stalls import Stalls
from shared.artifacts import ArtifactStore
from shared.decisions import Keys
from shared.manifest import Manifest
from shared.registry.port import Catalogue, Registry
from shared.registry.principals import Persons, Roles


@dataclass
class ActivatorDeps:
    registry: Registry
    catalogue: Catalogue
    store: ActivatorStore
    artifacts: ArtifactStore
    fleet: Fleet
    serving_path: Callable[[Manifest], str]
    roles_of: Roles
    persons_of: Persons
    decision_keys: Callable[[], Keys]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    stalls: Stalls = field(default_factory=Stalls)  # rollouts waiting on replicas (ADR 0025)

    def lock(self, adapter: str, environment: str) -> asyncio.Lock:
        return self.locks.setdefault((adapter, environment), asyncio.Lock())
