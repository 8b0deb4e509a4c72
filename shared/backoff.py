"""Capped exponential backoff, the one retry policy every service uses (tenacity's waits).

`delay(attempt)` is the pause before attempt `attempt + 1` (1, 2, 4, ... times
`first_delay_s`, at most `max_delay_s`), for loops whose attempts are not a plain "call
again" (the dispatcher waiting out an outage, a load verified on every replica);
`retrying()` is tenacity's retry loop for the plain ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import tenacity


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 5
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def wait(self) -> tenacity.wait_exponential:
        return tenacity.wait_exponential(multiplier=self.first_delay_s, max=self.max_delay_s)

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (counted from 1)."""
        state: Any = SimpleNamespace(attempt_number=attempt)  # all tenacity's wait reads
        return float(self.wait()(state))

    def retrying(
        self,
        *,
        retry_on: Callable[[BaseException], bool],
        sleep: Callable[[float], Awaitable[None]],
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    ) -> tenacity.AsyncRetrying:
        """Up to `attempts` calls while `retry_on` says the error may pass; the last error
        is raised as itself."""
        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self.wait(),
            retry=tenacity.retry_if_exception(retry_on),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
