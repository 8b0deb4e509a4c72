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


# A service's own settings, changed through its HTTP API by a principal proven by a bearer
# token (never on the commands topic, where the actor would be a name the sender typed).
# In-process values the services' handlers take: not Avro, never on the wire.


@dataclass(frozen=True, slots=True, kw_only=True)
class SetReplicas:
    """Set the replicas serving `header.environment`: the whole list, in order (empty: none).

    An environment command: `header.adapter` is empty.
    """

    header: CommandHeader
    urls: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCanaryAnalysis:
    """Change the canary-analysis thresholds of `header.environment`, key by key.

    Keys are the activator's `AnalysisPolicy` fields, values their text; the keys not named
    keep their value. An environment command: `header.adapter` is empty.
    """

    header: CommandHeader
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRetentionPolicy:
    """The retention policy of `header.environment` for `header.adapter` (empty: every adapter
    there): keep the newest `keep_superseded` superseded revisions, and every revision younger
    than `min_age_days`. Made through the archiver's API, as the token's principal."""

    header: CommandHeader
    keep_superseded: int
    min_age_days: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceLegalHold:
    """Hold `revision` of `header.adapter`: it never expires until released.

    `header.reason` says why (required); `header.environment` is empty.
    """

    header: CommandHeader
    revision: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseLegalHold:
    """Release the hold in force on `revision` of `header.adapter`."""

    header: CommandHeader
    revision: str
