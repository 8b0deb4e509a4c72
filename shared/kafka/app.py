"""faust-streaming wiring: one app per service, raw bytes in, our codec and dispatcher on top."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import faust

from shared.kafka.auth import KafkaEndpoint
from shared.kafka.dispatch import Dispatcher, RawRecord
from shared.kafka.topics import dlq_of
from shared.settings import KernelSettings
from shared.shutdown import DEFAULT_GRACE_S, ExitDeadline


def faust_credentials(kafka: KafkaEndpoint) -> faust.SASLCredentials | None:
    """aiokafka's SASL credentials for `kafka`, or None for PLAINTEXT."""
    if not kafka.authenticated:
        return None
    return faust.SASLCredentials(
        username=kafka.username, password=kafka.password or "", mechanism=kafka.mechanism
    )


def make_app(settings: KernelSettings, *, app_id: str | None = None, **overrides: Any) -> faust.App:
    """A faust app that never declares topics (provisioning owns them) and reads raw bytes."""
    brokers = [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")]
    options: dict[str, Any] = {
        "broker": brokers,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "autodiscover": False,
        "store": "memory://",
        "web_enabled": settings.web_port > 0,
        "web_port": settings.web_port or 6066,
        "web_host": "127.0.0.1",
        "broker_credentials": faust_credentials(settings.kafka()),
        # A stop does not wait for the events in flight: one may be waiting out an outage
        # (ADR 0008) forever; not acknowledged, it is redelivered to the next instance.
        "stream_wait_empty": False,
    }
    options.update(overrides)
    return faust.App(app_id or f"{settings.consumer_group_prefix}-{settings.service}", **options)


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    if not raw:
        return ()
    items: Iterable[Any] = raw.items() if isinstance(raw, dict) else raw
    return tuple((str(k), bytes(v or b"")) for k, v in items)


class FaustDeadLetters:
    """Dead-letter sink on the app's own producer; awaits the broker's ack before returning."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._topics: dict[str, Any] = {}

    async def send(self, record: RawRecord, headers: Sequence[tuple[str, bytes]]) -> None:
        name = dlq_of(record.topic)
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = self._app.topic(
                name, key_serializer="raw", value_serializer="raw"
            )
        # force=True: send now, not when the source event is acked, so the dead letter
        # is durable before the consumer's offset moves past the original.
        pending = await topic.send(
            key=record.key, value=record.value or b"", headers=list(headers), force=True
        )
        await pending


def attach_consumer(
    app: faust.App,
    topics: Sequence[str],
    dispatcher: Dispatcher,
    *,
    name: str | None = None,
    ready: asyncio.Event | None = None,
) -> Any:
    """Consume `topics` in order per partition and hand each record to `dispatcher`.

    With `ready`, no record is dispatched before it is set (handlers still connecting).
    """
    channel = app.topic(
        *topics, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    async def consume(stream: Any) -> None:
        async for event in stream.events():
            if ready is not None:
                await ready.wait()
            msg = event.message
            await dispatcher.dispatch(
                RawRecord(
                    topic=msg.topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    key=msg.key,
                    value=msg.value,
                    headers=_headers(msg.headers),
                )
            )

    return app.agent(channel, name=name or f"{dispatcher.service}.consumer")(consume)


class PromptWorker(faust.Worker):
    """faust's worker, whose shutdown after SIGTERM or SIGINT keeps `deadline`."""

    def __init__(self, app: faust.App, *, deadline: ExitDeadline, **options: Any) -> None:
        super().__init__(app, **options)
        self.deadline = deadline

    def _on_sigterm(self) -> None:
        self.deadline.arm()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self.deadline.arm()
        super()._on_sigint()


def run_worker(
    app: faust.App, *, loglevel: str = "warning", stop_within_s: float = DEFAULT_GRACE_S
) -> None:
    """Run the app until SIGTERM/SIGINT (blocks; owns the event loop); once signalled, the
    process exits within `stop_within_s` however its dependencies answer."""
    worker = PromptWorker(app, deadline=ExitDeadline(stop_within_s), loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
