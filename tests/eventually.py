"""Wait until something holds: the one poll loop the tests use (tenacity underneath).

    eventually(lambda: topic in admin.list_topics(), timeout=30, message="topic created")
    events = eventually(lambda: stack.events(a) or None, timeout=90)   # the value it found
    await eventually_async(read_status, timeout=10, interval=0.05)

`predicate` is called until it returns something truthy, which is returned; an
AssertionError it raises counts as "not yet" (so a predicate may assert, and the last
assertion is what a timeout reports). Any other exception propagates at once: a dead
service or a bug is not a reason to keep waiting. After `timeout` seconds an
AssertionError says what did not happen, with the last value seen or the last assertion.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity

T = TypeVar("T")


def _not_yet(value: Any) -> bool:
    return not value


def _policy(timeout: float, interval: float) -> dict[str, Any]:
    return {
        "stop": tenacity.stop_after_delay(timeout),
        "wait": tenacity.wait_fixed(interval),
        "retry": tenacity.retry_if_result(_not_yet)
        | tenacity.retry_if_exception_type(AssertionError),
    }


def _timed_out(message: str, timeout: float) -> Callable[[tenacity.RetryCallState], Any]:
    def report(state: tenacity.RetryCallState) -> Any:
        outcome = state.outcome
        last = (
            f"last: {outcome.exception()}"
            if outcome is not None and outcome.failed
            else f"last value: {outcome.result()!r}"
            if outcome is not None
            else "never called"
        )
        raise AssertionError(f"{message or 'condition'} not met within {timeout:g}s ({last})")

    return report


def eventually(
    predicate: Callable[[], T | None], *, timeout: float, interval: float = 0.2, message: str = ""
) -> T:
    """`predicate()`'s first truthy value, polled every `interval` for up to `timeout` s."""
    retrying = tenacity.Retrying(
        **_policy(timeout, interval), retry_error_callback=_timed_out(message, timeout)
    )
    result = retrying(predicate)
    assert result, "tenacity stops only on a truthy value or through the callback"
    return result


async def eventually_async(
    predicate: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = 0.2,
    message: str = "",
) -> T:
    """`eventually` for a coroutine function; the event loop runs between attempts."""
    retrying = tenacity.AsyncRetrying(
        **_policy(timeout, interval), retry_error_callback=_timed_out(message, timeout)
    )
    async for attempt in retrying:
        answered = False
        with attempt:  # keeps what the predicate raised, for the retry decision
            value = await predicate()
            answered = True
        if answered:
            attempt.retry_state.set_result(value)  # what `retry_if_result` judges
            if value:
                return value
    raise AssertionError("unreachable: the last attempt returns or the callback raises")
