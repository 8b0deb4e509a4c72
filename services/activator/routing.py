"""Digest-qualified serving names and the routing document replicas and gateways follow.

A revision is served as `<adapter>@<first 16 hex digits of its digest>`: a new revision is a
new name, so no replica ever reloads one name with other weights (a same-name reload reuses
stale prefix-cache blocks in vLLM). The routing document is built from the registry's
pointers alone, so every replica, the export file and `GET /routing` say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.pointers import EnvironmentPointer

DIGEST_CHARS = 16


def lora_name(adapter: str, revision: str) -> str:
    return f"{adapter}@{revision.removeprefix('sha256:')[:DIGEST_CHARS]}"


def served_names(adapter: str, pointer: EnvironmentPointer) -> set[str]:
    """What replicas keep loaded for the adapter: what serves, and the warm rollback target."""
    named = (pointer.active, pointer.canary, pointer.rollback_target)
    return {lora_name(adapter, r) for r in named if r}


def _entry(adapter: str, revision: str | None) -> dict[str, str] | None:
    if revision is None:
        return None
    return {"revision": revision, "lora_name": lora_name(adapter, revision)}


def adapter_route(adapter: str, pointer: EnvironmentPointer) -> dict[str, Any]:
    """One adapter's revisions with their traffic weights (percent of requests)."""
    canary_share = pointer.canary_percent if pointer.canary else 0
    weights: dict[str, int] = {}
    if pointer.active:
        weights[lora_name(adapter, pointer.active)] = 100 - canary_share
    if pointer.canary:
        weights[lora_name(adapter, pointer.canary)] = canary_share
    return {
        "active": _entry(adapter, pointer.active),
        "canary": _entry(adapter, pointer.canary),
        "canary_percent": canary_share,
        "canary_tenants": list(pointer.canary_tenants) if pointer.canary else [],
        "rollback_target": _entry(adapter, pointer.rollback_target),
        "weights": weights,
    }


def routing_document(
    environment: str,
    pointers: Mapping[str, EnvironmentPointer],
    *,
    generation: int,
    generated_at: datetime,
) -> dict[str, Any]:
    """Every adapter's routes in `environment`; `generation` rises with every pointer move."""
    return {
        "environment": environment,
        "generation": generation,
        "generated_at": generated_at.isoformat(),
        "adapters": {
            adapter: adapter_route(adapter, pointer)
            for adapter, pointer in sorted(pointers.items())
            if pointer.active or pointer.canary
        },
    }
