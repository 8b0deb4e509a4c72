"""What the archiver's sweep and handlers are given: the registry, its retention rules, the
weight store, cold storage, the clock, the crash points of the fault drills, and the lock
that keeps one sweep or archive at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.archiver.faults import Crash, no_crash
from services.archiver.ports import RetentionRules, WeightStore
from shared.coldstore import ColdStorage
from shared.observability import Metrics
from shared.registry.port import Registry


@dataclass
class ArchiverDeps:
    registry: Registry
    rules: RetentionRules
    store: WeightStore
    cold: ColdStorage
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    crash: Crash = no_crash
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    metrics: Metrics | None = None  # integrity and scrub metrics, where the process has them
