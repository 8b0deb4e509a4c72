"""An idempotent, ordered confluent-kafka producer and a publish that waits for the ack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shared.kafka.auth import Kafka, client_config


def make_producer(kafka: Kafka, **overrides: Any) -> Producer:
    """acks=all and idempotence: no duplicates from retries, per-partition order kept."""
    config: dict[str, Any] = {
        **client_config(kafka),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
    }
    config.update(overrides)
    return Producer(config)


def publish(
    producer: Producer,
    topic: str,
    *,
    key: bytes | None,
    value: bytes,
    headers: Sequence[tuple[str, bytes]] = (),
    timeout_s: float = 30.0,
) -> Message:
    """Produce one record and return its delivery report, or raise if it was not stored."""
    delivered: list[Message] = []
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        (failures.append(err) if err is not None else delivered.append(msg))

    producer.produce(topic, key=key, value=value, headers=list(headers), on_delivery=on_delivery)
    remaining = producer.flush(timeout_s)
    if failures:
        raise KafkaException(failures[0])
    if remaining or not delivered:
        raise TimeoutError(f"record to {topic} not acknowledged within {timeout_s}s")
    return delivered[0]
