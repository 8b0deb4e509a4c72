"""What the gateway holds while it runs: the routing applied (pushed or pulled, whichever
is newer), its keys, replicas and metrics; and the pull that keeps the routing current."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from services.gateway.forwarding import ReplicaPool
from services.gateway.keys import ClientKeys
from services.gateway.resolution import Applied, apply_document, serving_names
from services.gateway.settings import GatewaySettings
from services.gateway.telemetry import GatewayTelemetry
from shared.routing import RoutingDocumentError

log = structlog.get_logger("gateway")
OWNER = "adapter-promotion"


@dataclass
class GatewayState:
    settings: GatewaySettings
    keys: ClientKeys
    replicas: ReplicaPool
    admin_key: str | None = None
    replica_key: str | None = None
    telemetry: GatewayTelemetry = field(default_factory=GatewayTelemetry)
    applied: Applied | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def apply(self, document: Mapping[str, Any] | None) -> bool:
        """Apply `document` unless the one applied is newer; whether it was accepted."""
        if document is None:
            raise RoutingDocumentError("a routing document is a JSON object")
        before = self.generation()
        self.applied, accepted = apply_document(self.applied, document, self.settings.environment)
        if accepted and self.generation() != before:
            self.telemetry.generation.labels(self.settings.environment).set(self.generation())
            log.info("routing_applied", generation=self.generation(), before=before)
        return accepted

    def generation(self) -> int:
        return self.applied.table.generation if self.applied else -1

    def routing_document(self) -> dict[str, Any]:
        if self.applied is None:  # a replica's answer before its first push, as well
            return {"environment": self.settings.environment, "generation": -1, "adapters": {}}
        return dict(self.applied.document)

    def model_ids(self) -> list[str]:
        """The base first, then every logical adapter name that serves."""
        table = self.applied.table if self.applied else None
        return [self.settings.base_model, *serving_names(table)]

    def model_card(self, model: str) -> dict[str, Any]:
        card = {"id": model, "object": "model", "created": self.created, "owned_by": OWNER}
        if model != self.settings.base_model:
            card["parent"] = self.settings.base_model
        return card

    async def pull(self) -> None:
        """The activator's document, applied if newer; a failure is logged and retried at
        the next poll (the routing applied stays in force)."""
        url = self.settings.routing_url
        if not url:
            return
        try:
            document = await self.replicas.get_json(url)
            self.apply(document if isinstance(document, dict) else None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("routing_pull_failed", url=url, reason=repr(exc))

    async def _poll(self) -> None:
        while True:
            await self.pull()
            await asyncio.sleep(self.settings.routing_poll_s)

    @asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        poller = asyncio.create_task(self._poll(), name="routing-poll")
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await self.replicas.close()
