"""The outbox relay: publishes committed events to the lifecycle topic in commit order.

One leader at a time holds a PostgreSQL advisory lock on its own connection; standbys
retry the lock, so a leader that dies (its session ends, the lock goes with it) is
replaced within `standby_poll_s`. The leader wakes on LISTEN/NOTIFY and marks rows
published only after the broker acknowledged them (acks=all, idempotent producer with
the gapless guarantee: a failure stops the partition rather than reordering it). A crash
between delivery and marking republishes those rows; consumers and `audit verify`
recognise the duplicates by event id and hash.

The relay holds the log's signing key (nothing else does): before publishing a row it
checks that the event still hashes to its `hash` (a row altered in the database is refused,
not signed), signs `(adapter, seq, hash)` into the record's headers, and after publishing
writes a signed checkpoint of every chain head to write-once cold storage, on a schedule
and after each archive (shared/logseal.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog
from confluent_kafka import KafkaError, Message, Producer

from shared import chain
from shared.codec import Codec, CodecError
from shared.coldstore import ColdStorageSettings, open_cold_storage
from shared.coldstore.ports import ArchiveConflict, ColdStorage, ColdStorageError
from shared.kafka.auth import KafkaEndpoint
from shared.kafka.producer import make_producer
from shared.kafka.topics import LIFECYCLE
from shared.logseal import (
    Checkpoint,
    Head,
    checkpoint_key,
    event_headers,
    parse_checkpoint,
    sign_checkpoint,
)
from shared.registry.store import NOTIFY_CHANNEL
from shared.settings import KernelSettings
from shared.signing import Signer, load_or_create_signer

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
    closing_flush_s: float = 1.0  # on leaving: what a last flush and a close may take
    signer: Signer | None = None  # the log's key; None only in benchmarks of the bare relay
    cold: ColdStorage | None = None  # where checkpoints go; None: no checkpoints
    checkpoint_interval_s: float = 60.0
    codec: Codec = field(default_factory=Codec.default)


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
        self._checkpointed_at = 0.0  # monotonic; 0: checkpoint at the first chance
        self._checkpoint_due = True

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, lead while holding the lock, and reconnect after database errors."""
        while not stop.is_set():
            try:
                await self._session(stop)
            # InternalClientError: a connection cut while a statement was in flight (seen when
            # PostgreSQL shuts down under the relay); it is a lost connection like the rest.
            except TamperedOutboxRow as exc:
                # Publishing stops at the altered row (order is part of the log) until an
                # operator restores it from the registry's backups; it is never signed.
                self.is_leader = False
                log.error("outbox_row_tampered", error=str(exc))
                await _wait(stop, 5.0)
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
                    published = await self.publish_batch(conn, producer)
                    await self.checkpoint_if_due(conn)
                    if published == 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                _first(wake, stop), timeout=self.config.idle_poll_s
                            )
            finally:
                # Short: an unconfirmed row is not marked, so the next leader publishes it.
                producer.flush(self.config.closing_flush_s)
        finally:
            self.is_leader = False
            await close_within(conn, self.config.closing_flush_s)

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

        tampered: TamperedOutboxRow | None = None
        for row in rows:
            payload = bytes(row["payload"])
            headers = [
                ("event_type", row["event_type"].encode()),
                ("event_id", row["event_id"].encode()),
                ("seq", str(row["seq"]).encode()),
            ]
            if self.config.signer is not None:
                try:
                    event_hash = self._sealed_hash(row["id"], payload)
                except TamperedOutboxRow as exc:
                    tampered = exc  # publish what precedes it, then stop there
                    break
                headers += event_headers(self.config.signer, row["adapter"], row["seq"], event_hash)
            if row["event_type"] == "ManifestArchived":
                self._checkpoint_due = True  # every archive is anchored at once
            producer.produce(
                self.config.topic,
                key=row["adapter"].encode(),
                value=payload,
                headers=headers,
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
        if tampered is not None:
            raise tampered
        return len(delivered)

    def _sealed_hash(self, row_id: int, payload: bytes) -> str:
        """The event's hash, after checking its content still produces it (else refuse)."""
        try:
            full_name, record = self.config.codec.decode_writer(payload)
        except CodecError as exc:
            raise TamperedOutboxRow(f"outbox row {row_id} does not decode: {exc}") from exc
        envelope = record.get("envelope") or {}
        claimed, prev_hash = envelope.get("hash"), envelope.get("prev_hash")
        if not isinstance(claimed, str) or not isinstance(prev_hash, str):
            raise TamperedOutboxRow(f"outbox row {row_id} has no sealed envelope")
        if chain.compute_hash(prev_hash, full_name, record) != claimed:
            raise TamperedOutboxRow(
                f"outbox row {row_id} ({full_name}) no longer hashes to its sealed hash "
                f"{claimed[:16]}: it was altered after the registry committed it"
            )
        return claimed

    async def checkpoint_if_due(self, conn: asyncpg.Connection) -> Checkpoint | None:
        """A checkpoint when the interval passed (or an archive was published) and a head moved."""
        if self.config.signer is None or self.config.cold is None:
            return None
        interval = time.monotonic() - self._checkpointed_at >= self.config.checkpoint_interval_s
        if not (interval or self._checkpoint_due):
            return None
        written = await self.checkpoint(conn)
        self._checkpointed_at, self._checkpoint_due = time.monotonic(), False
        return written

    async def checkpoint(
        self, conn: asyncpg.Connection, *, next_key: str = "", always: bool = False
    ) -> Checkpoint | None:
        """Sign every published chain head into checkpoint n+1 and store it write-once.

        Nothing is written when no head moved since checkpoint n (unless `always`, which a
        key rotation uses to announce `next_key`).
        """
        signer, cold = self.config.signer, self.config.cold
        if signer is None or cold is None:
            raise RuntimeError("checkpoints need the log's signing key and cold storage")
        topic = self.config.topic
        last = await conn.fetchrow(
            "SELECT number, digest FROM log_checkpoints WHERE log = $1"
            " ORDER BY number DESC LIMIT 1",
            topic,
        )
        rows = await conn.fetch(
            "SELECT DISTINCT ON (adapter) adapter, seq, payload FROM outbox"
            " WHERE published_at IS NOT NULL ORDER BY adapter, seq DESC"
        )
        heads = {}
        for row in rows:
            heads[row["adapter"]] = Head(row["seq"], self._sealed_hash(-1, bytes(row["payload"])))
        number = (last["number"] if last else 0) + 1
        if not heads and not always:
            return None  # nothing published yet: nothing to vouch for
        if last is not None and not always:
            previous = await asyncio.to_thread(
                cold.read, cold.uri_for(checkpoint_key(topic, number - 1))
            )
            if parse_checkpoint(previous).checkpoint.heads == heads:
                return None
        signed = sign_checkpoint(
            signer,
            Checkpoint(
                log=topic,
                number=number,
                issued_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                previous=last["digest"] if last else "",
                heads=heads,
                key_id=signer.key_id,
                next_key=next_key,
            ),
        )
        key = checkpoint_key(topic, number)
        try:
            uri = await asyncio.to_thread(cold.put, key, signed.to_json())
        except ArchiveConflict:
            # A leader died between storing checkpoint n and recording it: adopt that one.
            uri = cold.uri_for(key)
            signed = parse_checkpoint(await asyncio.to_thread(cold.read, uri))
        except ColdStorageError as exc:
            log.warning("checkpoint_not_written", number=number, error=str(exc))
            return None
        written = signed.checkpoint
        await conn.execute(
            "INSERT INTO log_checkpoints (log, number, digest, uri, key_id, issued_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            topic,
            number,
            written.digest,
            uri,
            written.key_id,
            datetime.fromisoformat(written.issued_at),
        )
        log.info("log_checkpointed", number=number, heads=len(heads), uri=uri)
        return written


class RelayDeliveryError(OSError):
    """The broker did not confirm a batch; the relay reconnects and publishes it again."""


class TamperedOutboxRow(Exception):
    """An outbox row whose event no longer matches its sealed hash: never signed or published."""


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def close_within(conn: asyncpg.Connection, seconds: float) -> None:
    """Close `conn` politely if the server answers within `seconds`, else drop it: a
    partitioned database never answers, and nothing here may wait on it for long."""
    try:
        await asyncio.wait_for(conn.close(), timeout=seconds)
    except (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.PostgresError):
        conn.terminate()


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
            signer=load_or_create_signer(settings.log_signing_key),
            cold=open_cold_storage(ColdStorageSettings.from_env()),
            checkpoint_interval_s=settings.log_checkpoint_interval_s,
            codec=Codec.from_settings(settings.schemas),
        )
    )
