"""The registry's reads ingest's API serves a trainer: a submission's verdict, found from the
trained event's id, and the catalogue it is checked against."""

from __future__ import annotations

import asyncpg

from services.ingest.handlers import CONSUMER
from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.codec import Codec
from shared.events import RevisionRegistered
from shared.ids import derive_event_id
from shared.registry import reads
from shared.registry.port import Catalogue, Registry
from shared.verdicts import Verdict, duplicate, verdict_of


class RegistryReads:
    """`SubmissionReads` over the registry: its outbox holds every committed event."""

    def __init__(
        self, pool: asyncpg.Pool, registry: Registry, catalogue: Catalogue, codec: Codec
    ) -> None:
        self._pool = pool
        self._registry = registry
        self._catalogue = catalogue
        self._codec = codec

    async def verdict(self, event_id: str) -> Verdict | None:
        # The registration's id derives from the trained event's (`caused_envelope`), and
        # the outbox is indexed by event id: one row, whichever adapter it is.
        registered_id = derive_event_id(event_id, RevisionRegistered.__name__)
        async with self._pool.acquire() as conn:
            registered = await reads.event(conn, self._codec, registered_id)
        if not isinstance(registered, RevisionRegistered):
            handled = await self._registry.handled(CONSUMER, event_id)
            return duplicate(event_id) if handled else None
        envelope = registered.envelope
        events = await self._registry.events(envelope.adapter, envelope.revision)
        return verdict_of(event_id, events)

    async def base_models(self) -> list[BaseModelSpec]:
        return await self._catalogue.base_models()

    async def environments(self) -> list[EnvironmentSpec]:
        return await self._catalogue.environments()
