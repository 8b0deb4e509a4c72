"""Fakes for the archiver: retention rules in memory, a crash hook that raises instead of
ending the process, and a clock a test moves.

Cold storage needs no fake: `shared.coldstore.DirectoryColdStorage` on a temporary folder
is the real write-once backend, and the weight store is the real `LocalArtifactStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.archiver.faults import CRASH_POINTS
from shared.retention import RetentionPolicy


class InMemoryRetentionRules:
    """Fakes `services.archiver.ports.RetentionRules`: policies, legal holds and the answers
    to retention commands, in memory."""

    def __init__(self, policies: Iterable[RetentionPolicy] = ()) -> None:
        self._policies = {(p.environment, p.adapter): p for p in policies}
        self._holds: dict[tuple[str, str], str] = {}  # (adapter, revision) -> reason
        self.outcomes: dict[str, Mapping[str, Any]] = {}  # command id -> its answer

    def hold(self, adapter: str, revision: str, reason: str = "litigation hold") -> None:
        self._holds[(adapter, revision)] = reason

    def release(self, adapter: str, revision: str) -> None:
        del self._holds[(adapter, revision)]

    async def policies(self) -> list[RetentionPolicy]:
        return [self._policies[key] for key in sorted(self._policies)]

    async def holds(self, adapter: str | None = None) -> set[tuple[str, str]]:
        return {key for key in self._holds if adapter is None or key[0] == adapter}

    async def hold_reason(self, adapter: str, revision: str) -> str | None:
        return self._holds.get((adapter, revision))

    async def save_policy(self, policy: RetentionPolicy, set_by: str) -> None:
        self._policies[(policy.environment, policy.adapter)] = policy

    async def place_hold(self, adapter: str, revision: str, reason: str, placed_by: str) -> bool:
        if (adapter, revision) in self._holds:
            return False
        self.hold(adapter, revision, reason)
        return True

    async def release_hold(
        self, adapter: str, revision: str, released_by: str, reason: str
    ) -> bool:
        return self._holds.pop((adapter, revision), None) is not None

    async def outcome(self, cause_id: str) -> Mapping[str, Any] | None:
        return self.outcomes.get(cause_id)

    async def record_outcome(self, answer: Mapping[str, Any]) -> None:
        self.outcomes.setdefault(str(answer["cause_id"]), dict(answer))  # the first stands


class SimulatedCrash(BaseException):
    """The process ended at a crash point; a BaseException, so no handler can swallow it."""


class CrashAt:
    """Fakes `services.archiver.faults.crash_after(point)`: raises `SimulatedCrash` at
    `point` instead of `os._exit`, so a test can resume with fresh deps afterwards."""

    def __init__(self, point: str) -> None:
        if point not in CRASH_POINTS:
            raise ValueError(f"{point!r} is not one of {CRASH_POINTS}")
        self.point = point
        self.passed: list[str] = []  # the steps reached, in order

    def __call__(self, step: str) -> None:
        self.passed.append(step)
        if step == self.point:
            raise SimulatedCrash(step)


class Clock:
    """A clock a test moves by hand; share one between the registry and the archiver."""

    def __init__(self, start: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
