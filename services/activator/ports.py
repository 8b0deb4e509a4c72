"""What the activator drives, reads and keeps: serving targets (vLLM replicas, or the
reference server), the metrics canary analysis reads (`metrics_sources.py`), and its own
tables (`store.PostgresActivatorStore`; in memory for tests,
`tests.fakes.activator.InMemoryActivatorStore`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.activator.metrics import Counters
from services.activator.plans import Outcome, RequestAction
from shared.contract import ServingContract
from shared.pointers import EnvironmentPointer


class TargetError(Exception):
    """A serving target refused or failed a request; `retryable` when trying again may help,
    `unreachable` when no answer came at all (refused connection, timeout): an outage."""

    def __init__(
        self, url: str, message: str, *, retryable: bool, unreachable: bool = False
    ) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.retryable = retryable or unreachable
        self.unreachable = unreachable


class MetricsUnavailable(TargetError):
    """A metrics source (a gateway, a Prometheus server) gave no counters: no answer
    (`unreachable`), an error answer, or one it could not read. The canary step holds."""

    def __init__(self, url: str, message: str, *, unreachable: bool) -> None:
        super().__init__(url, message, retryable=True, unreachable=unreachable)


class MetricsSource(Protocol):
    """Where canary analysis reads per-revision counters: the replicas, a gateway, or a
    Prometheus server."""

    async def snapshot(self, environment: str) -> dict[str, dict[str, Counters]]:
        """The environment's cumulative counters by origin (a replica, a gateway instance),
        then by lora name. MetricsUnavailable when the source cannot be read at all."""
        ...


@dataclass(frozen=True, slots=True)
class BaseCard:
    """The base model a replica lists in `GET /v1/models` (the card with no `parent`): its
    served name, the folder or hub id it was loaded from, and its context length."""

    id: str
    root: str
    max_model_len: int | None = None


class ServingTarget(Protocol):
    """One replica, spoken to through vLLM's runtime LoRA endpoints."""

    url: str

    async def describe(self) -> ServingContract | None:
        """The base, tokenizer and template the replica runs; None if it cannot say (vLLM)."""

    async def models(self) -> Mapping[str, str]:
        """Every model the replica serves now (`GET /v1/models`): name -> root path."""

    async def base(self) -> BaseCard | None:
        """The base model card of `GET /v1/models`; None when it lists none."""

    async def probe(self, lora_name: str) -> int:
        """Ask for one token under `lora_name`; the status it answered. TargetError when the
        replica says no such model: a listing alone does not prove the name is served."""

    async def load(self, lora_name: str, lora_path: str) -> None:
        """Load a LoRA under `lora_name`; TargetError if refused. Success is not proof: list it."""

    async def unload(self, lora_name: str) -> None:
        """Unload a LoRA; one that is not loaded is not an error."""

    async def routes_traffic(self) -> bool:
        """Whether the replica splits traffic by the routing it is handed (stock vLLM: no)."""

    async def push_routing(self, document: Mapping[str, Any]) -> bool:
        """Hand the replica its routing; False when it takes none (a gateway routes for it)."""

    async def metrics(self) -> str:
        """The replica's Prometheus text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryStep:
    adapter: str
    environment: str
    revision: str
    traffic_percent: int
    step_started_at: datetime
    baseline: Mapping[str, Any]


class ActivatorStore(Protocol):
    """The activator's own tables (replicas, analysis settings, approvers, canary steps,
    outcomes) and its reads of the registry's pointers."""

    async def replicas(self, environment: str) -> list[str]:
        """The environment's replica URLs, in their configured order."""
        ...

    async def served_environments(self) -> list[str]:
        """Every environment with at least one replica, sorted."""
        ...

    async def analysis_settings(self, environment: str) -> dict[str, Any]:
        """The environment's stored canary analysis thresholds (unset: empty)."""
        ...

    async def set_replicas(self, environment: str, urls: Sequence[str]) -> list[str]:
        """Make `urls` the environment's replicas, in order; the stored list."""
        ...

    async def merge_analysis_settings(
        self, environment: str, settings: Mapping[str, object], set_by: str
    ) -> dict[str, Any]:
        """Set the given thresholds, keeping the others; every stored threshold now."""
        ...

    async def canary_rows(
        self, adapter: str | None, environment: str | None
    ) -> list[dict[str, Any]]:
        """The canary steps observed for `adapter` (None: every adapter) in `environment`
        (None: every one), by environment and adapter; each with its `last_decision`."""
        ...

    async def recent_outcomes(
        self, adapter: str, environment: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest answers about `adapter` (empty: its environment's commands), newest first."""
        ...

    async def record_approvers(
        self,
        adapter: str,
        revision: str,
        environment: str,
        approvers: Sequence[str],
        event_id: str,
        approved_at: datetime,
    ) -> None:
        """Who approved the revision there; the first record stands."""
        ...

    async def approvers(self, adapter: str, revision: str, environment: str) -> list[str]: ...

    async def pointers(self, environment: str) -> tuple[dict[str, EnvironmentPointer], int]:
        """Every adapter's pointer in `environment`, and a generation that rises with each move."""
        ...

    async def canaries(self) -> list[tuple[str, str, EnvironmentPointer]]:
        """(adapter, environment, pointer) of every running canary, by environment and adapter."""
        ...

    async def canary_step(self, adapter: str, environment: str) -> CanaryStep | None: ...

    async def start_canary_step(self, step: CanaryStep) -> None:
        """Begin observing `step`, replacing the adapter's step there and its last decision."""
        ...

    async def note_decision(
        self, adapter: str, environment: str, evidence: Mapping[str, str]
    ) -> None: ...

    async def end_canary(self, adapter: str, environment: str) -> None: ...

    async def outcome(self, cause_id: str) -> Mapping[str, Any] | None:
        """The answer recorded for a request, or None when it has none yet."""
        ...

    async def record_outcome(
        self,
        *,
        cause_id: str,
        adapter: str,
        environment: str,
        action: RequestAction,
        revision: str | None,
        outcome: Outcome,
        detail: str,
        principal: str,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        """Record the answer to a request; the first answer under a cause id stands."""
        ...
