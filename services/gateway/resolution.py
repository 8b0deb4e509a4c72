"""What a request's `model` names: the base, a revision chosen by the applied routing, or
something the gateway must refuse; and which routing document is applied.

Functions of values: the request's model, id and tenant, and the routing table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.routing import RoutingTable, choose


class Outcome(StrEnum):
    base = "base"  # forwarded unchanged
    revision = "revision"  # forwarded under the chosen lora name
    empty = "empty"  # 400
    unknown = "unknown"  # 404
    no_routing = "no_routing"  # 503: no document applied yet
    unrouted = "unrouted"  # 503: the adapter serves nothing for this request


@dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    target: str | None = None  # the name the replicas are asked for


def resolve(
    model: str, table: RoutingTable | None, base_model: str, request_key: str, tenant: str | None
) -> Resolution:
    """Where a request for `model` goes, by the same choice every replica makes."""
    if not model:
        return Resolution(Outcome.empty)
    if model == base_model:
        return Resolution(Outcome.base, base_model)
    if table is None:
        return Resolution(Outcome.no_routing)
    route = table.routes.get(model)
    if route is None or not route.serves:
        return Resolution(Outcome.unknown)
    target = choose(route, request_key, tenant)
    return Resolution(Outcome.revision, target) if target else Resolution(Outcome.unrouted)


def serving_names(table: RoutingTable | None) -> list[str]:
    """The logical adapter names that currently serve, sorted."""
    if table is None:
        return []
    return sorted(name for name, route in table.routes.items() if route.serves)


class WrongEnvironment(ValueError):
    """A routing document for another environment than the gateway's."""


@dataclass(frozen=True, slots=True)
class Applied:
    """The routing document in force and the table read from it."""

    document: Mapping[str, Any]
    table: RoutingTable


def apply_document(
    applied: Applied | None, document: Mapping[str, Any], environment: str
) -> tuple[Applied | None, bool]:
    """(what is applied afterwards, whether `document` was accepted). Raises
    `RoutingDocumentError` or `WrongEnvironment` for a document that cannot be applied."""
    named = document.get("environment")
    if named is not None and named != environment:
        raise WrongEnvironment(
            f"a routing document for {named!r}; this gateway serves {environment!r}"
        )
    table = RoutingTable.from_document(document)
    if not table.supersedes(applied.table if applied else None):
        return applied, False
    return Applied(dict(document), table), True
