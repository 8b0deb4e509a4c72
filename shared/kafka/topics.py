"""The topic catalogue and its idempotent provisioning with confluent-kafka's admin client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from shared.kafka.auth import Kafka, client_config

TRAINED = "adapters.trained.v1"
LIFECYCLE = "adapters.lifecycle.v1"
COMMANDS = "adapters.commands.v1"

DAY_MS = 24 * 60 * 60 * 1000


def dlq_of(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def catalogue(
    *, lifecycle_partitions: int = 6, partitions: int = 6, min_insync_replicas: int = 1
) -> list[TopicSpec]:
    """Every topic of ARCHITECTURE.md with its retention.

    The lifecycle topic is the audit log: kept forever and never compacted, so no
    transition can disappear behind a later one with the same key.
    """
    isr = {"min.insync.replicas": str(min_insync_replicas)}
    week = {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS), **isr}
    month = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS), **isr}
    forever = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1", **isr}
    specs = [
        TopicSpec(TRAINED, partitions, week),
        TopicSpec(LIFECYCLE, lifecycle_partitions, forever),
        TopicSpec(COMMANDS, partitions, week),
    ]
    return specs + [TopicSpec(dlq_of(s.name), s.partitions, month) for s in specs]


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    created: list[str]
    altered: list[str]
    repartitioned: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.altered or self.repartitioned)


def provision(
    admin: AdminClient,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> ProvisionReport:
    """Create missing topics, align configs and grow partitions; a second run changes nothing."""
    specs = list(specs)
    existing = admin.list_topics(timeout=timeout).topics
    missing = [s for s in specs if s.name not in existing]
    created: list[str] = []
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, replication_factor, config=dict(s.configs))
                for s in missing
            ],
            operation_timeout=timeout,
        )
        for name, fut in futures.items():
            try:
                fut.result()
                created.append(name)
            except KafkaException as exc:
                # Another provisioner (or a retried request) got there first: align it below.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        # Creation returns once the controller committed it; brokers learn of it a little
        # later. Wait, so callers (and the config read below) can use the topics at once.
        existing = _wait_for_metadata(admin, [s.name for s in missing], timeout)

    present = [s for s in specs if s.name not in created]
    grow = [s for s in present if len(existing[s.name].partitions) < s.partitions]
    if grow:
        futures = admin.create_partitions([NewPartitions(s.name, s.partitions) for s in grow])
        for fut in futures.values():
            fut.result()

    current = read_configs(admin, [s.name for s in present], timeout=timeout)
    stale = [s for s in present if any(current[s.name].get(k) != v for k, v in s.configs.items())]
    if stale:
        resources = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                s.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in s.configs.items()
                ],
            )
            for s in stale
        ]
        for fut in admin.incremental_alter_configs(resources).values():
            fut.result()
    return ProvisionReport(
        created=sorted(created),
        altered=sorted(s.name for s in stale),
        repartitioned=sorted(s.name for s in grow),
    )


def _wait_for_metadata(admin: AdminClient, names: list[str], timeout: float) -> Any:
    """Topic metadata once every name shows up (creation propagates to brokers lazily)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(n in topics for n in names) or time.monotonic() > deadline:
            return topics
        time.sleep(0.1)


def read_configs(
    admin: AdminClient, names: Iterable[str], *, timeout: float = 30.0
) -> dict[str, dict[str, str]]:
    """Each topic's effective configuration as the broker reports it."""
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    result: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + timeout
    while resources:
        retry = []
        for resource, fut in admin.describe_configs(resources, request_timeout=timeout).items():
            try:
                entries = fut.result()
            except KafkaException as exc:
                # A topic created a moment ago may not have reached every broker yet.
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or (
                    time.monotonic() > deadline
                ):
                    raise
                retry.append(ConfigResource(ConfigResource.Type.TOPIC, resource.name))
                continue
            result[resource.name] = {k: e.value for k, e in entries.items()}
        resources = retry
        if retry:
            time.sleep(0.2)
    return result


def admin_client(kafka: Kafka) -> AdminClient:
    return AdminClient(client_config(kafka))
