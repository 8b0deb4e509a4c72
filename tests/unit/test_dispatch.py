"""The dispatcher's error policy, with an in-memory dead-letter sink (no broker)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from shared.backoff import Backoff
from shared.codec import Codec
from shared.events import AdapterTrained, RevisionRegistered
from shared.kafka.dispatch import Dispatcher, Outcome, PermanentError, RawRecord
from tests.samples import sample


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[RawRecord, dict[str, str]]] = []

    async def send(self, record: RawRecord, headers: Sequence[tuple[str, bytes]]) -> None:
        self.sent.append((record, {k: v.decode() for k, v in headers}))


async def _no_sleep(_: float) -> None:
    return None


def _dispatcher(handlers: dict[type, Any]) -> tuple[Dispatcher, FakeDeadLetters]:
    sink = FakeDeadLetters()
    dispatcher = Dispatcher(
        service="test",
        codec=Codec.from_env(),
        handlers=handlers,
        dead_letters=sink,
        retry=Backoff(attempts=3, first_delay_s=0.01),
        sleep=_no_sleep,
    )
    return dispatcher, sink


def _record(value: bytes | None) -> RawRecord:
    return RawRecord(topic="t", partition=2, offset=7, key=b"k", value=value)


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        (b"", "undecodable"),
        (None, "empty message"),
        (b"\xc3\x01\x00", "undecodable"),
        (b"garbage garbage garbage", "undecodable"),
        (b"\xc3\x01" + bytes(8) + b"body", "fingerprint"),
    ],
)
async def test_undecodable_bytes_are_dead_lettered_with_the_reason(
    value: bytes | None, reason_part: str
) -> None:
    dispatcher, sink = _dispatcher({})
    assert await dispatcher.dispatch(_record(value)) is Outcome.dead_lettered
    [(record, headers)] = sink.sent
    assert record.value == value
    assert reason_part in headers["dlq.reason"]
    assert headers["dlq.source.topic"] == "t"
    assert headers["dlq.source.partition"] == "2"
    assert headers["dlq.source.offset"] == "7"


async def test_an_event_is_routed_to_the_handler_of_its_type() -> None:
    seen: list[object] = []

    async def on_trained(event: AdapterTrained) -> None:
        seen.append(event)

    dispatcher, sink = _dispatcher({AdapterTrained: on_trained})
    event = sample(AdapterTrained)
    assert await dispatcher.dispatch(_record(Codec.from_env().encode(event))) is Outcome.handled
    assert seen == [event] and sink.sent == []


async def test_an_event_without_handler_is_ignored_and_counted_not_dead_lettered() -> None:
    dispatcher, sink = _dispatcher({})
    value = Codec.from_env().encode(sample(RevisionRegistered))
    assert await dispatcher.dispatch(_record(value)) is Outcome.ignored
    assert sink.sent == [] and dispatcher.counts[Outcome.ignored] == 1


async def test_a_permanent_error_is_dead_lettered_at_once() -> None:
    calls = 0

    async def refuse(event: AdapterTrained) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("artifact_uri scheme 'ftp' is not supported")

    dispatcher, sink = _dispatcher({AdapterTrained: refuse})
    value = Codec.from_env().encode(sample(AdapterTrained))
    assert await dispatcher.dispatch(_record(value)) is Outcome.dead_lettered
    assert calls == 1
    assert "ftp" in sink.sent[0][1]["dlq.reason"]
    assert sink.sent[0][1]["dlq.error_type"] == "PermanentError"


async def test_a_transient_error_is_retried_and_then_succeeds() -> None:
    attempts = 0

    async def flaky(event: AdapterTrained) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("registry unavailable")

    dispatcher, sink = _dispatcher({AdapterTrained: flaky})
    value = Codec.from_env().encode(sample(AdapterTrained))
    assert await dispatcher.dispatch(_record(value)) is Outcome.handled
    assert attempts == 3 and sink.sent == []


async def test_a_handler_that_keeps_failing_is_dead_lettered_with_its_last_error() -> None:
    async def broken(event: AdapterTrained) -> None:
        raise ConnectionError("registry unavailable")

    dispatcher, sink = _dispatcher({AdapterTrained: broken})
    value = Codec.from_env().encode(sample(AdapterTrained))
    assert await dispatcher.dispatch(_record(value)) is Outcome.dead_lettered
    reason = sink.sent[0][1]["dlq.reason"]
    assert "after 3 attempts" in reason and "registry unavailable" in reason


@pytest.mark.parametrize(("attempt", "delay"), [(1, 0.2), (2, 0.4), (3, 0.8), (6, 5.0), (10, 5.0)])
def test_backoff_doubles_and_is_capped(attempt: int, delay: float) -> None:
    assert Backoff(first_delay_s=0.2, max_delay_s=5.0).delay(attempt) == pytest.approx(delay)


async def test_an_exception_declared_permanent_is_dead_lettered_without_retry() -> None:
    calls = 0

    async def illegal(event: AdapterTrained) -> None:
        nonlocal calls
        calls += 1
        raise LookupError("revision already decided")

    dispatcher, sink = _dispatcher({AdapterTrained: illegal})
    dispatcher.permanent = (PermanentError, LookupError)
    value = Codec.from_env().encode(sample(AdapterTrained))
    assert await dispatcher.dispatch(_record(value)) is Outcome.dead_lettered
    assert calls == 1 and sink.sent[0][1]["dlq.error_type"] == "LookupError"


async def test_a_dependency_that_is_away_is_waited_out_however_many_tries_it_takes() -> None:
    calls = 0
    slept: list[float] = []

    async def during_a_restart(event: AdapterTrained) -> None:
        nonlocal calls
        calls += 1
        if calls <= 12:  # far more than the 3 attempts a hiccup gets
            raise ConnectionRefusedError("the database is restarting")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    dispatcher, sink = _dispatcher({AdapterTrained: during_a_restart})
    dispatcher.unavailable = (ConnectionError,)
    dispatcher.sleep = sleep
    value = Codec.from_env().encode(sample(AdapterTrained))
    assert await dispatcher.dispatch(_record(value)) is Outcome.handled
    assert calls == 13 and sink.sent == []
    assert slept[:3] == [0.01, 0.02, 0.04] and max(slept) == 0.04  # capped backoff


async def test_waiting_for_a_dependency_does_not_use_up_the_attempts_of_a_real_error() -> None:
    calls = 0

    async def away_then_broken(event: AdapterTrained) -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise ConnectionRefusedError("the database is restarting")
        raise ValueError("a real bug")

    dispatcher, sink = _dispatcher({AdapterTrained: away_then_broken})
    dispatcher.unavailable = (ConnectionError,)
    value = Codec.from_env().encode(sample(AdapterTrained))
    assert await dispatcher.dispatch(_record(value)) is Outcome.dead_lettered
    assert calls == 6  # three waits, three real attempts
    assert "after 3 attempts" in sink.sent[0][1]["dlq.reason"]
