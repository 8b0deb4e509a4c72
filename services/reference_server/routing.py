"""Which revision answers a request for an adapter: the pushed routing, applied per request.

A request goes to the canary when its tenant is a canary tenant, or when a stable hash of
its request id falls under the canary's share; otherwise to the active revision. The same
request id always lands on the same revision, on every replica.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Route:
    active: str | None = None  # lora names
    canary: str | None = None
    canary_percent: int = 0
    canary_tenants: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RoutingTable:
    generation: int = -1
    routes: Mapping[str, Route] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RoutingTable:
        routes = {}
        for adapter, entry in document.get("adapters", {}).items():
            active, canary = entry.get("active"), entry.get("canary")
            routes[adapter] = Route(
                active=active["lora_name"] if active else None,
                canary=canary["lora_name"] if canary else None,
                canary_percent=int(entry.get("canary_percent", 0)),
                canary_tenants=frozenset(entry.get("canary_tenants", [])),
            )
        return cls(generation=int(document.get("generation", 0)), routes=routes)


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
