"""The registry in memory: the same contract as PostgreSQL's, for unit tests and the runner.

It decides with the real `lifecycle.apply`, moves pointers with the real `move_pointer`,
seals with the real chain and keeps an outbox of encoded events, so what a handler does
against it is what it does against PostgreSQL. A commit has no `await` inside it, so on
one event loop it is atomic, and a stale `expected_version` raises `ConcurrentTransition`
exactly as the row lock and compare-and-set do there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import chain
from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.codec import Codec
from shared.events import Event, RevisionRegistered, RevisionRolledBack
from shared.lifecycle import InvalidTransition, LifecycleEvent, RevisionStatus, State, apply
from shared.pointers import EnvironmentPointer, move_pointer
from shared.registry.port import (
    Committed,
    ConcurrentTransition,
    PointerKey,
    RevisionRecord,
    Snapshot,
    Step,
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    adapter: str
    seq: int
    event_id: str
    event_type: str
    payload: bytes  # the codec's bytes, as the relay would publish them


@dataclass
class _Tables:
    revisions: dict[tuple[str, str], RevisionRecord]
    heads: dict[str, tuple[int, str]]  # adapter -> (last seq, last hash)
    pointers: dict[PointerKey, EnvironmentPointer]
    outbox: list[OutboxEntry]
    inbox: set[tuple[str, str]]

    def copy(self) -> _Tables:
        return _Tables(
            dict(self.revisions),
            dict(self.heads),
            dict(self.pointers),
            list(self.outbox),
            set(self.inbox),
        )


class InMemoryRegistry:
    """Implements `shared.registry.port.Registry` in process memory."""

    def __init__(self, codec: Codec | None = None, *, clock: Any = None) -> None:
        self.codec = codec or Codec.default()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._t = _Tables({}, {}, {}, [], set())
        self.closed = False

    @property
    def outbox(self) -> list[OutboxEntry]:
        """Every committed event, in commit order (what the relay would publish)."""
        return list(self._t.outbox)

    async def commit(
        self, steps: Sequence[Step], *, inbox: tuple[str, str] | None = None
    ) -> Committed:
        if inbox is not None and inbox in self._t.inbox:
            return Committed(duplicate=True)
        ids = {s.event.envelope.event_id for s in steps}
        committed_ids = {e.event_id for e in self._t.outbox}
        if ids and ids <= committed_ids:
            return Committed(duplicate=True)
        work = self._t.copy()  # all or nothing: swapped in only when every step succeeded
        sealed: list[LifecycleEvent] = []
        versions: dict[tuple[str, str], int] = {}
        for step in steps:
            event, version = self._commit_one(work, step)
            sealed.append(event)
            versions[(event.envelope.adapter, event.envelope.revision)] = version
        _check_restored(work, sealed)
        if inbox is not None:
            work.inbox.add(inbox)
        self._t = work
        return Committed(events=tuple(sealed), versions=versions)

    def _commit_one(self, work: _Tables, step: Step) -> tuple[LifecycleEvent, int]:
        envelope = step.event.envelope
        key = (envelope.adapter, envelope.revision)
        current = work.revisions.get(key)
        version = current.version if current else 0
        if step.expected_version is not None and step.expected_version != version:
            raise ConcurrentTransition(
                f"{key[0]}@{key[1]}: expected version {step.expected_version}, "
                f"found {version} ({type(step.event).__name__} not committed)"
            )
        status = current.status if current else RevisionStatus()
        new_status = apply(status, step.event)  # raises InvalidTransition
        seq, prev_hash = work.heads.get(envelope.adapter, (0, chain.GENESIS_HASH))
        now = self._clock()
        stamped = dataclasses.replace(
            step.event, envelope=dataclasses.replace(envelope, occurred_at=now)
        )
        event = chain.seal(stamped, seq=seq + 1, prev_hash=prev_hash)
        work.heads[envelope.adapter] = (seq + 1, event.envelope.hash)
        work.outbox.append(
            OutboxEntry(
                envelope.adapter,
                seq + 1,
                envelope.event_id,
                type(event).SCHEMA,
                self.codec.encode(event),
            )
        )
        registered = event if isinstance(event, RevisionRegistered) else None
        work.revisions[key] = RevisionRecord(
            adapter=key[0],
            revision=key[1],
            version=version + 1,
            status=new_status,
            manifest_digest=(
                current.manifest_digest
                if current
                else registered.manifest_digest
                if registered
                else None
            ),
            submitter=current.submitter
            if current
            else registered.submitter
            if registered
            else None,
            created_at=current.created_at if current else now,
            updated_at=now,
        )
        _move_pointers(work, event)
        return event, version + 1

    async def transition(
        self, event: LifecycleEvent, expected_version: int | None = None
    ) -> Committed:
        return await self.commit([Step(event, expected_version)])

    async def revision(self, adapter: str, revision: str) -> RevisionRecord | None:
        return self._t.revisions.get((adapter, revision))

    async def revisions(
        self, *, tracks: Collection[State] = (), adapter: str | None = None
    ) -> list[RevisionRecord]:
        return _revisions(self._t, tracks, adapter)

    async def pointer(self, adapter: str, environment: str) -> EnvironmentPointer:
        return self._t.pointers.get((adapter, environment), EnvironmentPointer())

    async def pointers(self, adapter: str | None = None) -> dict[PointerKey, EnvironmentPointer]:
        return _pointers(self._t, adapter)

    async def events(
        self, adapter: str, revision: str | None = None, *, types: Collection[type[Event]] = ()
    ) -> list[LifecycleEvent]:
        return self._events(self._t, adapter, revision, types)

    async def snapshot(
        self,
        *,
        tracks: Collection[State] = (),
        adapter: str | None = None,
        event_types: Collection[type[Event]] = (),
    ) -> Snapshot:
        tables = self._t
        return Snapshot(
            revisions=_revisions(tables, tracks, adapter),
            pointers=_pointers(tables, adapter),
            events=self._events(tables, adapter, None, event_types) if event_types else [],
        )

    async def handled(self, consumer: str, event_id: str) -> bool:
        return (consumer, event_id) in self._t.inbox

    async def record_handled(self, consumer: str, event_id: str) -> bool:
        if (consumer, event_id) in self._t.inbox:
            return False
        self._t.inbox.add((consumer, event_id))
        return True

    async def ping(self) -> None:
        if self.closed:
            raise ConnectionError("the in-memory registry is closed")

    async def close(self) -> None:
        self.closed = True

    def _events(
        self,
        tables: _Tables,
        adapter: str | None,
        revision: str | None,
        types: Collection[type[Event]],
    ) -> list[LifecycleEvent]:
        names = {t.SCHEMA for t in types}
        entries = sorted(
            (e for e in tables.outbox if adapter is None or e.adapter == adapter),
            key=lambda e: (e.adapter, e.seq),
        )
        found: list[LifecycleEvent] = []
        for entry in entries:
            if names and entry.event_type not in names:
                continue
            event: Any = self.codec.decode(entry.payload)
            if revision is None or event.envelope.revision == revision:
                found.append(event)
        return found


def _revisions(
    tables: _Tables, tracks: Collection[State], adapter: str | None
) -> list[RevisionRecord]:
    wanted = {State(t) for t in tracks}
    chosen = [
        r
        for r in tables.revisions.values()
        if (adapter is None or r.adapter == adapter)
        and (not wanted or r.status.revision_track in wanted)
    ]
    return sorted(chosen, key=lambda r: (r.updated_at, r.adapter, r.revision))


def _pointers(tables: _Tables, adapter: str | None) -> dict[PointerKey, EnvironmentPointer]:
    return {
        key: pointer
        for key, pointer in sorted(tables.pointers.items())
        if adapter is None or key[0] == adapter
    }


def _move_pointers(tables: _Tables, event: LifecycleEvent) -> None:
    envelope = event.envelope
    if envelope.environment:
        environments = [envelope.environment]
    else:  # a revision-wide fact (expiry) may clear pointers in every environment
        environments = [e for (a, e) in tables.pointers if a == envelope.adapter]
    for environment in environments:
        key = (envelope.adapter, environment)
        before = tables.pointers.get(key, EnvironmentPointer())
        after = move_pointer(before, event)
        if after != before:
            tables.pointers[key] = after


def _check_restored(tables: _Tables, events: Sequence[LifecycleEvent]) -> None:
    for event in events:
        if not isinstance(event, RevisionRolledBack) or not event.restored_revision:
            continue
        envelope = event.envelope
        pointer = tables.pointers.get((envelope.adapter, envelope.environment))
        active = pointer.active if pointer else None
        if active != event.restored_revision:
            raise InvalidTransition(
                event,
                None,
                f"it claims to restore {event.restored_revision}, but the commit leaves "
                f"{active or 'nothing'} active in {envelope.environment}",
            )


class InMemoryCatalogue:
    """Implements `shared.registry.port.Catalogue` in process memory."""

    def __init__(
        self,
        bases: Sequence[BaseModelSpec] = (),
        environments: Sequence[EnvironmentSpec] = (),
    ) -> None:
        self._bases = {(b.model_id, b.revision): b for b in bases}
        self._environments = {e.name: e for e in environments}

    async def put_base_model(self, spec: BaseModelSpec) -> None:
        existing = self._bases.setdefault((spec.model_id, spec.revision), spec)
        if existing != spec:
            raise ValueError(
                f"base model {spec.model_id}@{spec.revision} is already registered with a "
                "different description; a changed base is a new revision"
            )

    async def base_model(self, model_id: str, revision: str) -> BaseModelSpec | None:
        return self._bases.get((model_id, revision))

    async def base_models(self) -> list[BaseModelSpec]:
        return [self._bases[k] for k in sorted(self._bases)]

    async def put_environment(self, spec: EnvironmentSpec) -> None:
        self._environments[spec.name] = spec

    async def environment(self, name: str) -> EnvironmentSpec | None:
        return self._environments.get(name)

    async def environments(self) -> list[EnvironmentSpec]:
        return [self._environments[k] for k in sorted(self._environments)]
