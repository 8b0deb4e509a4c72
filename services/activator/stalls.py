"""Rollouts that wait on unreachable replicas: when each began waiting, whether its stall is
on the log yet, and the two metrics an on-call engineer is alerted on (ADR 0025).

A request that finds its replicas unreachable is waited out by the dispatcher (ADR 0008);
once it has waited `threshold_s`, one `RolloutStalled` says so, and it keeps being tried.
The bookkeeping lives in this process: a restarted activator starts the clock again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge


def stall_due(since: datetime, now: datetime, threshold_s: float, reported: bool) -> bool:
    """True when a rollout waiting since `since` has waited its threshold and no stall of
    it was recorded yet: the moment to record one, once."""
    return not reported and (now - since).total_seconds() >= threshold_s


def unreachable_replicas(message: str) -> list[str]:
    """The replicas a `ReplicasUnreachable` names (`URL: why; URL: why`), in order, once each."""
    names = [part.split(": ", 1)[0].strip() for part in message.split("; ")]
    return list(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    """One request waiting on replicas: whose, since when, and whether its stall is logged."""

    adapter: str
    environment: str
    since: datetime
    reported: bool = False


class Stalls:
    """Per request (its cause id), when it began waiting on unreachable replicas, and the
    gauge `adapter_rollout_stalled` (1 while a stall of the adapter's environment is
    recorded and unresolved) and counter `adapter_rollouts_failed_total`."""

    def __init__(self, threshold_s: float = 300.0, registry: CollectorRegistry | None = None):
        self.threshold_s = threshold_s
        self._waiting: dict[str, WaitingRequest] = {}
        registry = registry if registry is not None else CollectorRegistry()
        self.stalled = Gauge(
            "adapter_rollout_stalled",
            "1 while a rollout waits on unreachable replicas past the stall threshold",
            ("adapter", "environment"),
            registry=registry,
        )
        self.failed = Counter(
            "adapter_rollouts_failed",
            "rollouts that could not complete (RolloutFailed on the log)",
            ("adapter", "environment"),
            registry=registry,
        )

    def unreachable(
        self, cause_id: str, adapter: str, environment: str, now: datetime
    ) -> WaitingRequest:
        """Note that the request `cause_id` found its replicas unreachable at `now`."""
        return self._waiting.setdefault(cause_id, WaitingRequest(adapter, environment, now))

    def due(self, cause_id: str, now: datetime) -> bool:
        waiting = self._waiting.get(cause_id)
        if waiting is None:
            return False
        return stall_due(waiting.since, now, self.threshold_s, waiting.reported)

    def reported(self, cause_id: str) -> None:
        """The request's stall is on the log: alert on it until the request ends."""
        waiting = self._waiting[cause_id]
        self._waiting[cause_id] = replace(waiting, reported=True)
        self.stalled.labels(waiting.adapter, waiting.environment).set(1)

    def ended(self, cause_id: str, adapter: str, environment: str, *, failed: bool) -> None:
        """The request completed, was refused or failed: it waits no longer."""
        self._waiting.pop(cause_id, None)
        still = any(
            w.reported and (w.adapter, w.environment) == (adapter, environment)
            for w in self._waiting.values()
        )
        self.stalled.labels(adapter, environment).set(1 if still else 0)
        if failed:
            self.failed.labels(adapter, environment).inc()
