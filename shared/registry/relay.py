"""The outbox relay: publishes committed events to the lifecycle topic in commit order.

One leader at a time holds a PostgreSQL advisory lock on its own connection; standbys
retry the lock, so a leader that dies (its session ends, the lock goes with it) is
replaced within `standby_poll_s`. The leader wakes on LISTEN/NOTIFY and marks rows
published only after the broker acknowledged them (acks=all, idempotent producer with
the gapless guarantee: a failure stops the partition rather than reordering it). A crash
between delivery and marking republishes those rows; consumers and `audit verify`
recognise the duplicates by event id and hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog
from confluent_kafka import KafkaError, Message, Producer

from shared.kafka.auth import KafkaEndpoint
from shared.kafka.producer import make_producer
from shared.kafka.topics import LIFECYCLE
from shared.registry.store import NOTIFY_CHANNEL
from shared.settings import KernelSettings

log = structlog.get_logger(__name__)

LEADER_LOCK = 0x52454C41  # "RELA"


@dataclass
class RelayConfig:
    dsn: str
    kafka: KafkaEndpoint
    topic: str = LIFECYCLE
    batch_size: int = 500
    idle_poll_s: float = 1.0
    standby_poll_s: float = 0.5
    delivery_timeout_s: float = 30.0


class OutboxRelay:
    def __init__(
        self, config: RelayConfig, producer_factory: Callable[[], Producer] | None = None
    ) -> None:
        self.config = config
        self._producer_factory = producer_factory or (
            lambda: make_producer(
                config.kafka,
                **{"enable.gapless.guarantee": True, "partitioner": "murmur2_random"},
            )
        )
        self.is_leader = False
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, lead while holding the lock, and reconnect after database errors."""
        while not stop.is_set():
            try:
                await self._session(stop)
            # InternalClientError: a connection cut while a statement was in flight (seen when
            # PostgreSQL shuts down under the relay); it is a lost connection like the rest.
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.exceptions.InternalClientError,
            ) as exc:
                self.is_leader = False
                log.warning("relay_connection_lost", error=repr(exc))
                await _wait(stop, 1.0)

    async def _session(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(
            self.config.dsn, server_settings={"application_name": f"relay-{os.getpid()}"}
        )
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                if await _wait(stop, self.config.standby_poll_s):
                    return
            self.is_leader = True
            log.info("relay_leader_elected")
            wake = asyncio.Event()
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
            producer = self._producer_factory()
            try:
                while not stop.is_set():
                    wake.clear()
                    if await self.publish_batch(conn, producer) == 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                _first(wake, stop), timeout=self.config.idle_poll_s
                            )
            finally:
                producer.flush(5)
        finally:
            self.is_leader = False
            await conn.close()

    async def publish_batch(self, conn: asyncpg.Connection, producer: Producer) -> int:
        """Publish the oldest unpublished rows; return how many were confirmed and marked."""
        rows = await conn.fetch(
            "SELECT id, adapter, seq, event_id, event_type, payload FROM outbox"
            " WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.config.batch_size,
        )
        if not rows:
            return 0
        failures: list[KafkaError] = []
        delivered: list[int] = []

        def on_delivery(row_id: int) -> Callable[[KafkaError | None, Message], None]:
            def report(err: KafkaError | None, _msg: Message) -> None:
                (failures.append(err) if err is not None else delivered.append(row_id))

            return report

        for row in rows:
            producer.produce(
                self.config.topic,
                key=row["adapter"].encode(),
                value=bytes(row["payload"]),
                headers=[
                    ("event_type", row["event_type"].encode()),
                    ("event_id", row["event_id"].encode()),
                    ("seq", str(row["seq"]).encode()),
                ],
                on_delivery=on_delivery(row["id"]),
            )
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(None, producer.flush, self.config.delivery_timeout_s)
        if failures or remaining:
            # Mark nothing: the batch is published again, in order, by this or the next leader.
            raise RelayDeliveryError(
                f"{len(failures)} failed, {remaining} unconfirmed: {failures[:1]}"
            )
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", delivered
        )
        self.published += len(delivered)
        return len(delivered)


class RelayDeliveryError(OSError):
    """The broker did not confirm a batch; the relay reconnects and publishes it again."""


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True when `stop` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


def relay_from_settings(settings: KernelSettings) -> OutboxRelay:
    return OutboxRelay(
        RelayConfig(
            dsn=settings.database_url,
            kafka=settings.relay_kafka(),
            topic=settings.lifecycle_topic,
        )
    )
