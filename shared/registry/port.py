"""The registry port: what services may ask of the registry, and the values it answers with.

Two implementations keep one contract (tests/contracts/registry.py runs against both):
`shared.registry.store.PostgresRegistry`, the real one, and
`shared.registry.memory.InMemoryRegistry`, which unit tests and the in-process runner
use. Nothing here imports a database driver, so handlers and pure modules can name it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.events import Event
from shared.lifecycle import LifecycleEvent, RevisionStatus, State
from shared.pointers import EnvironmentPointer


class ConcurrentTransition(Exception):
    """Another writer moved the revision first: re-read it and decide again."""


@dataclass(frozen=True, slots=True)
class Step:
    """One event to commit; `expected_version` None skips the compare-and-set."""

    event: LifecycleEvent
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Committed:
    events: tuple[LifecycleEvent, ...] = ()  # sealed, as published
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    duplicate: bool = False  # already committed (same event ids, or inbox hit): no change


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    adapter: str
    revision: str
    version: int
    status: RevisionStatus
    manifest_digest: str | None
    submitter: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None


PointerKey = tuple[str, str]  # (adapter, environment)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent read: revisions, the pointers beside them, and chosen committed events."""

    revisions: list[RevisionRecord]
    pointers: dict[PointerKey, EnvironmentPointer]
    events: list[LifecycleEvent]


class Registry(Protocol):
    """Every transition decided by the lifecycle and committed atomically with its outbox entry."""

    async def commit(
        self, steps: Sequence[Step], *, inbox: tuple[str, str] | None = None
    ) -> Committed:
        """Commit `steps` in order, all or nothing.

        Raises `InvalidTransition` (the lifecycle refused a step) or `ConcurrentTransition`
        (a step's expected version is stale). `inbox=(consumer, event_id)` records that the
        consumer handled that event in the same transaction; a redelivery changes nothing.
        """
        ...

    async def transition(
        self, event: LifecycleEvent, expected_version: int | None = None
    ) -> Committed: ...

    async def revision(self, adapter: str, revision: str) -> RevisionRecord | None: ...

    async def revisions(
        self, *, tracks: Collection[State] = (), adapter: str | None = None
    ) -> list[RevisionRecord]:
        """Revisions whose revision track is in `tracks` (all when empty), of `adapter` (or
        every adapter), least recently moved first."""
        ...

    async def pointer(self, adapter: str, environment: str) -> EnvironmentPointer: ...

    async def pointers(self, adapter: str | None = None) -> dict[PointerKey, EnvironmentPointer]:
        """Every environment pointer (of `adapter`, or all) that was ever set."""
        ...

    async def events(
        self, adapter: str, revision: str | None = None, *, types: Collection[type[Event]] = ()
    ) -> list[LifecycleEvent]:
        """Committed (sealed) events of `adapter` (of one revision; of `types`), in seq order."""
        ...

    async def snapshot(
        self,
        *,
        tracks: Collection[State] = (),
        adapter: str | None = None,
        event_types: Collection[type[Event]] = (),
    ) -> Snapshot:
        """`revisions`, `pointers` and `events` as one consistent read."""
        ...

    async def handled(self, consumer: str, event_id: str) -> bool: ...

    async def record_handled(self, consumer: str, event_id: str) -> bool:
        """Mark an event handled when the handler changed nothing else; False if it was."""
        ...

    async def ping(self) -> None:
        """Raise one of the outage errors when the registry cannot be reached."""
        ...

    async def close(self) -> None: ...


class Catalogue(Protocol):
    """Base model revisions and environments (managed with `adapterctl base|env`)."""

    async def put_base_model(self, spec: BaseModelSpec) -> None:
        """Register a base model revision; ValueError if it exists with another description."""
        ...

    async def base_model(self, model_id: str, revision: str) -> BaseModelSpec | None: ...
    async def base_models(self) -> list[BaseModelSpec]: ...
    async def put_environment(self, spec: EnvironmentSpec) -> None: ...
    async def environment(self, name: str) -> EnvironmentSpec | None: ...
    async def environments(self) -> list[EnvironmentSpec]: ...


def pointers_naming(
    pointers: dict[PointerKey, EnvironmentPointer], adapter: str, revision: str
) -> list[str]:
    """The environments whose pointer still names `adapter@revision`, sorted."""
    return sorted(
        environment
        for (name, environment), p in pointers.items()
        if name == adapter and revision in (p.active, p.canary, p.rollback_target)
    )
