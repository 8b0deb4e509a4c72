"""Read a topic from its beginning to the end it has now (audit replay, tests, tooling)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from shared.kafka.auth import READER_GROUP_PREFIX, Kafka, client_config

BATCH = 1000  # records per consume call

# librdkafka's own log lines (a coordinator connection dropped as the reader closes, say)
# would land on a CLI user's stderr; what matters surfaces as an exception or a timeout.
_LIBRDKAFKA = logging.getLogger("shared.kafka.reader.librdkafka")
_LIBRDKAFKA.addHandler(logging.NullHandler())
_LIBRDKAFKA.propagate = False


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode(errors="replace")
        return None


def iter_topic(
    kafka: Kafka, topic: str, *, timeout_s: float = 30.0, group: str | None = None
) -> Iterator[LogRecord]:
    """Yield every record in `topic`, partition by partition in offset order, then stop.

    The end is each partition's high watermark when reading starts, so a topic that
    keeps growing still yields a finite, consistent snapshot. No group offsets are
    committed: an auditor's replay leaves no trace on the cluster. `group` (never joined)
    defaults to a throwaway reader's, which the ACLs let readers look up.
    """
    consumer = Consumer(
        {
            **client_config(kafka, logger=_LIBRDKAFKA),
            "group.id": group or f"{READER_GROUP_PREFIX}{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            # A fetch at a partition's end waits this long on the broker for more, and the
            # next partition's fetch queues behind it (one fetch per broker at a time): at
            # the default 500 ms every partition switch cost a quarter of a second.
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaException(f"topic {topic!r} not found: {meta.error if meta else ''}")
        spans: dict[int, tuple[int, int]] = {}
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                spans[p] = (low, high)
        for partition, (low, end) in sorted(spans.items()):
            consumer.assign([TopicPartition(topic, partition, low)])  # no offset lookup
            yield from _read_partition(consumer, topic, partition, low, end, timeout_s)
    finally:
        consumer.close()


def _read_partition(
    consumer: Consumer, topic: str, partition: int, low: int, end: int, timeout_s: float
) -> Iterator[LogRecord]:
    deadline = time.monotonic() + timeout_s
    following = low  # the offset expected next
    while True:
        # One call per batch, not per record; never more than are left before `end`, since
        # a consume call waits for as many as it asks for (or its timeout).
        batch = consumer.consume(min(BATCH, max(1, end - following)), timeout=0.5)
        if not batch:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}] did not reach offset {end}")
            continue
        deadline = time.monotonic() + timeout_s
        for msg in batch:
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                raise KafkaException(error)
            offset = msg.offset() or 0
            following = offset + 1
            yield LogRecord(
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp_ms=msg.timestamp()[1],
                key=_as_bytes(msg.key()),
                value=_as_bytes(msg.value()),
                headers=_headers(msg.headers()),
            )
            if offset + 1 >= end:
                return


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return tuple((str(k), _as_bytes(v) or b"") for k, v in items)


def _as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def read_topic(kafka: Kafka, topic: str, *, timeout_s: float = 30.0) -> list[LogRecord]:
    return list(iter_topic(kafka, topic, timeout_s=timeout_s))
