"""The analysis timer survives a registry that is away: faust's timer crashes the whole
service on an exception, so a round that cannot even list its work waits for the next."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.activator.canary import tick


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
