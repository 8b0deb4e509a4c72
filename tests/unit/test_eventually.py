"""`eventually` waits for a condition, returns what it found, and says what never happened."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.eventually import eventually, eventually_async


def test_returns_the_first_truthy_value_once_the_condition_holds() -> None:
    calls = itertools.count(1)
    assert eventually(lambda: [n] if (n := next(calls)) >= 3 else [], timeout=5, interval=0) == [3]


def test_an_assertion_in_the_predicate_means_not_yet() -> None:
    calls = itertools.count(1)

    def third_time() -> bool:
        assert next(calls) >= 3, "too early"
        return True

    assert eventually(third_time, timeout=5, interval=0) is True


def test_times_out_with_the_message_and_the_last_value() -> None:
    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=r"the topic exists not met within 0.2s \(last value: 0\)"
    ):
        eventually(lambda: 0, timeout=0.2, interval=0.05, message="the topic exists")
    assert 0.2 <= time.monotonic() - started < 2


def test_times_out_with_the_last_assertion() -> None:
    def never() -> None:
        raise AssertionError("replica r1 does not list it")

    with pytest.raises(AssertionError, match="last: replica r1 does not list it"):
        eventually(never, timeout=0.1, interval=0.02)


def test_any_other_exception_propagates_at_once() -> None:
    calls = itertools.count(1)

    def dead() -> bool:
        next(calls)
        raise ProcessLookupError("the service died")

    with pytest.raises(ProcessLookupError):
        eventually(dead, timeout=5, interval=0)
    assert next(calls) == 2  # called once


async def test_the_async_variant_awaits_the_predicate_between_sleeps() -> None:
    calls = itertools.count(1)

    async def ready() -> str | None:
        return "ready" if next(calls) >= 3 else None

    assert await eventually_async(ready, timeout=5, interval=0) == "ready"


async def test_the_async_variant_times_out_with_the_message() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"leader elected not met within 0\.1s"):
        await eventually_async(never, timeout=0.1, interval=0.02, message="leader elected")


async def test_the_async_variant_lets_other_exceptions_through() -> None:
    async def broken() -> bool:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await eventually_async(broken, timeout=5, interval=0)
