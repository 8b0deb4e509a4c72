"""Operator commands on `adapters.commands.v1` (imperative names: requests, not facts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from shared.events.common import Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandHeader:
    command_id: str
    adapter: str
    environment: str
    actor: Actor
    issued_at: datetime
    correlation_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromoteRevision:
    """Start rolling `revision` out: a canary at `canary_percent` (or to `tenants`)."""

    SCHEMA: ClassVar[str] = "adapters.commands.v1.PromoteRevision"

    header: CommandHeader
    revision: str
    canary_percent: int = 0
    tenants: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpandCanary:
    SCHEMA: ClassVar[str] = "adapters.commands.v1.ExpandCanary"

    header: CommandHeader
    revision: str
    traffic_percent: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackRevision:
    """Point the environment back at `to_revision` (default: its rollback target)."""

    SCHEMA: ClassVar[str] = "adapters.commands.v1.RollbackRevision"

    header: CommandHeader
    to_revision: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AbortCanary:
    SCHEMA: ClassVar[str] = "adapters.commands.v1.AbortCanary"

    header: CommandHeader
    revision: str
