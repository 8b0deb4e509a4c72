"""Which revision answers a request for an adapter: the routing document the activator
pushes, read into a table, and the one choice every replica and gateway makes from it.

A request goes to the canary when its tenant is a canary tenant, or when a stable hash of
its request id falls under the canary's share; otherwise to the active revision. The same
request id always lands on the same revision, wherever it is chosen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RoutingDocumentError(ValueError):
    """A routing document that cannot be read: what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Route:
    active: str | None = None  # lora names
    canary: str | None = None
    canary_percent: int = 0
    canary_tenants: frozenset[str] = frozenset()

    @property
    def serves(self) -> bool:
        return self.active is not None or self.canary is not None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    generation: int = -1
    routes: Mapping[str, Route] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RoutingTable:
        try:
            routes = {
                adapter: _route(entry) for adapter, entry in document.get("adapters", {}).items()
            }
            return cls(generation=int(document.get("generation", 0)), routes=routes)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise RoutingDocumentError(f"not a routing document: {exc!r}") from None

    def supersedes(self, applied: RoutingTable | None) -> bool:
        """Whether this table may replace `applied`: an older document arriving late never
        undoes a newer one (the same generation again is harmless)."""
        return applied is None or self.generation >= applied.generation


def _route(entry: Mapping[str, Any]) -> Route:
    active, canary = entry.get("active"), entry.get("canary")
    return Route(
        active=str(active["lora_name"]) if active else None,
        canary=str(canary["lora_name"]) if canary else None,
        canary_percent=int(entry.get("canary_percent", 0)),
        canary_tenants=frozenset(str(t) for t in entry.get("canary_tenants", [])),
    )


def bucket(request_key: str) -> int:
    """0..99, the same for the same key everywhere."""
    return int.from_bytes(hashlib.sha256(request_key.encode()).digest()[:8], "big") % 100


def choose(route: Route, request_key: str, tenant: str | None) -> str | None:
    """The lora name that serves this request, or None when the adapter serves nothing."""
    if route.canary is not None:
        if tenant is not None and tenant in route.canary_tenants:
            return route.canary
        if bucket(request_key) < route.canary_percent:
            return route.canary
    return route.active
