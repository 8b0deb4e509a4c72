"""Read a topic from its beginning to the end it has now (audit replay, tests, tooling)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition


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
    bootstrap_servers: str, topic: str, *, timeout_s: float = 30.0
) -> Iterator[LogRecord]:
    """Yield every record in `topic`, partition by partition in offset order, then stop.

    The end is each partition's high watermark when reading starts, so a topic that
    keeps growing still yields a finite, consistent snapshot. No group offsets are
    committed: an auditor's replay leaves no trace on the cluster.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaException(f"topic {topic!r} not found: {meta.error if meta else ''}")
        ends: dict[int, int] = {}
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                ends[p] = high
        for partition, end in sorted(ends.items()):
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
            yield from _read_partition(consumer, topic, partition, end, timeout_s)
    finally:
        consumer.close()


def _read_partition(
    consumer: Consumer, topic: str, partition: int, end: int, timeout_s: float
) -> Iterator[LogRecord]:
    deadline = time.monotonic() + timeout_s
    while True:
        msg = consumer.poll(0.5)
        if msg is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}] did not reach offset {end}")
            continue
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            raise KafkaException(error)
        deadline = time.monotonic() + timeout_s
        offset = msg.offset() or 0
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


def read_topic(bootstrap_servers: str, topic: str, *, timeout_s: float = 30.0) -> list[LogRecord]:
    return list(iter_topic(bootstrap_servers, topic, timeout_s=timeout_s))
