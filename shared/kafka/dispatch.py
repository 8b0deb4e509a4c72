"""Decode a raw record, route it to its handler, dead-letter what cannot be handled.

Error policy in one place: undecodable bytes and `PermanentError`s go to the
dead-letter topic at once with the reason; errors that say a dependency is away (the
`unavailable` ones: the database restarting) are retried with capped backoff until it is
back, the partition waiting in order; any other exception is treated as a hiccup and
retried with backoff, then dead-lettered with the last cause. Nothing is dropped
silently: every outcome is logged and counted.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from shared.backoff import Backoff
from shared.codec import Codec, CodecError

log = structlog.get_logger(__name__)

Handler = Callable[[Any], Awaitable[None]]


class PermanentError(Exception):
    """The message is valid Avro but can never be handled (bad content, not a hiccup)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


class DeadLetterSink(Protocol):
    async def send(self, record: RawRecord, headers: Sequence[tuple[str, bytes]]) -> None:
        """Write `record` with `headers` to its topic's `.dlq`; return once durable."""


class Outcome(enum.StrEnum):
    handled = "handled"
    ignored = "ignored"  # a valid event this service has no handler for
    dead_lettered = "dead_lettered"


class DispatchObserver(Protocol):
    def observe(
        self,
        record: RawRecord,
        *,
        event_type: str,
        outcome: Outcome,
        seconds: float | None,
        error: BaseException | None,
    ) -> None:
        """One call per dispatched record: its outcome, the handling time, why it failed."""


def dead_letter_headers(
    record: RawRecord, *, service: str, reason: str, error: BaseException, now: datetime
) -> list[tuple[str, bytes]]:
    """The headers that let an operator see why and where a record failed, and replay it."""
    return [
        *record.headers,
        ("dlq.reason", reason.encode()),
        ("dlq.error_type", type(error).__name__.encode()),
        ("dlq.service", service.encode()),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.failed_at", now.isoformat().encode()),
    ]


@dataclass
class Dispatcher:
    service: str
    codec: Codec
    handlers: Mapping[type, Handler]
    dead_letters: DeadLetterSink
    retry: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    counts: Counter[str] = field(default_factory=Counter)
    # Exceptions that mean "this message can never succeed": dead-lettered without retry.
    permanent: tuple[type[Exception], ...] = (PermanentError,)
    # Exceptions that mean "a dependency is away": waited out, never dead-lettered (a
    # database outage must not send every event in flight to the dead-letter topic).
    unavailable: tuple[type[Exception], ...] = ()
    # Told every outcome (metrics); None: counts and logs only.
    observer: DispatchObserver | None = None

    async def dispatch(self, record: RawRecord) -> Outcome:
        bound = log.bind(topic=record.topic, partition=record.partition, offset=record.offset)
        try:
            if record.value is None:
                raise CodecError("empty message (no value)")
            event = self.codec.decode(record.value)
        except CodecError as exc:
            return await self._dead_letter(record, f"undecodable: {exc}", exc, bound)

        event_type = type(event).__name__
        handler = self.handlers.get(type(event))
        if handler is None:
            self.counts[Outcome.ignored] += 1
            self._observe(record, event_type, Outcome.ignored)
            return Outcome.ignored
        envelope = getattr(event, "envelope", None)
        bound = bound.bind(
            event_type=event_type,
            event_id=getattr(envelope or event, "event_id", None),
            adapter=getattr(envelope or event, "adapter", None),
            revision=getattr(envelope, "revision", None),
        )
        began = time.perf_counter()
        attempt = waited = 0
        while True:
            started = time.perf_counter()
            try:
                await handler(event)
            except self.permanent as exc:
                reason = f"rejected by handler: {exc}"
                return await self._dead_letter(record, reason, exc, bound, event_type, began)
            except self.unavailable as exc:  # waited out, however long: not an attempt
                waited += 1
                delay = self.retry.delay(min(waited, self.retry.attempts))
                bound.warning("handler_waiting", waited=waited, delay_s=delay, error=repr(exc))
                await self.sleep(delay)
            except Exception as exc:  # retried, then dead-lettered: never swallowed
                attempt += 1
                if attempt >= self.retry.attempts:
                    reason = f"handler failed after {attempt} attempts: {exc!r}"
                    return await self._dead_letter(record, reason, exc, bound, event_type, began)
                delay = self.retry.delay(attempt)
                bound.warning("handler_retry", attempt=attempt, delay_s=delay, error=repr(exc))
                await self.sleep(delay)
            else:
                self.counts[Outcome.handled] += 1
                self._observe(record, event_type, Outcome.handled, began)
                bound.debug("event_handled", duration_s=round(time.perf_counter() - started, 6))
                return Outcome.handled

    def _observe(
        self,
        record: RawRecord,
        event_type: str,
        outcome: Outcome,
        began: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self.observer is not None:
            seconds = None if began is None else time.perf_counter() - began
            self.observer.observe(
                record, event_type=event_type, outcome=outcome, seconds=seconds, error=error
            )

    async def _dead_letter(
        self,
        record: RawRecord,
        reason: str,
        error: BaseException,
        bound: Any,
        event_type: str = "undecodable",
        began: float | None = None,
    ) -> Outcome:
        headers = dead_letter_headers(
            record, service=self.service, reason=reason, error=error, now=datetime.now(UTC)
        )
        await self.dead_letters.send(record, headers)
        self.counts[Outcome.dead_lettered] += 1
        self._observe(record, event_type, Outcome.dead_lettered, began, error)
        bound.error("message_dead_lettered", reason=reason)
        return Outcome.dead_lettered
