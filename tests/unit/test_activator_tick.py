"""The analysis timer waits out what ADR 0008 names and nothing else: faust's timer
crashes the whole service on an exception, so a round that cannot reach the registry or a
replica waits for the next, while a bug crashes the service for its supervisor to restart."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from services.activator.canary import tick
from services.activator.ports import TargetError
from shared.pointers import EnvironmentPointer


class AwayStore:
    def __init__(self) -> None:
        self.asked = 0

    async def canaries(self) -> list[Any]:
        self.asked += 1
        raise ConnectionRefusedError("the database is restarting")

    async def served_environments(self) -> list[str]:
        raise AssertionError("not reached")


async def test_a_round_whose_registry_is_away_is_skipped_not_raised() -> None:
    store = AwayStore()
    deps: Any = SimpleNamespace(store=store)
    await tick(deps)
    await tick(deps)  # and the next round asks again
    assert store.asked == 2


class BrokenStore:
    async def canaries(self) -> list[Any]:
        raise TypeError("a bug of ours")


async def test_a_bug_in_a_round_propagates_and_crashes_the_service() -> None:
    deps: Any = SimpleNamespace(store=BrokenStore())
    with pytest.raises(TypeError, match="a bug of ours"):
        await tick(deps)


class OneCanaryStore:
    async def canaries(self) -> list[Any]:
        return [("a", "prod", EnvironmentPointer(active="r1", canary="r2", canary_percent=10))]

    async def served_environments(self) -> list[str]:
        return ["prod"]

    async def pointers(self, environment: str) -> tuple[dict[str, Any], int]:
        return {}, 0


class RaisingCatalogue:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.asked = 0

    async def environment(self, name: str) -> Any:
        self.asked += 1
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("the database restarts"),
        TargetError("http://replica", "connection refused", retryable=True),
    ],
)
async def test_an_outage_while_judging_a_canary_is_logged_and_the_round_goes_on(
    error: Exception,
) -> None:
    catalogue = RaisingCatalogue(error)
    deps: Any = SimpleNamespace(store=OneCanaryStore(), catalogue=catalogue)
    await tick(deps)
    assert catalogue.asked == 2  # the canary, then the environment's reconcile


async def test_a_bug_while_judging_a_canary_propagates() -> None:
    deps: Any = SimpleNamespace(
        store=OneCanaryStore(), catalogue=RaisingCatalogue(KeyError("a bug of ours"))
    )
    with pytest.raises(KeyError, match="a bug of ours"):
        await tick(deps)
