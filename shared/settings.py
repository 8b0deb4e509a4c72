"""Settings every service shares, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelSettings:
    """Where the bus and the registry are, and how this process logs.

    Built once in a service's composition root with `from_env`; tests pass a dict.
    """

    service: str
    kafka_bootstrap_servers: str = "127.0.0.1:39092"
    database_url: str = "postgresql://postgres@127.0.0.1:35432/adapters"
    trained_topic: str = "adapters.trained.v1"
    lifecycle_topic: str = "adapters.lifecycle.v1"
    commands_topic: str = "adapters.commands.v1"
    lifecycle_partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int = 1
    log_format: str = "console"
    log_level: str = "info"
    web_port: int = 0  # 0: no health/metrics web server
    run_relay: bool = True  # every service may lead the outbox relay (one leader at a time)
    artifact_root: str = "var/artifacts"
    # Consumer groups are "<prefix>-<service>": every instance of a service shares one;
    # a private test stack gets groups of its own.
    consumer_group_prefix: str = "adapters"

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> KernelSettings:
        env = os.environ if env is None else env
        defaults = cls(service=service)
        return cls(
            service=service,
            kafka_bootstrap_servers=env.get(
                "KAFKA_BOOTSTRAP_SERVERS", defaults.kafka_bootstrap_servers
            ),
            database_url=env.get("DATABASE_URL", defaults.database_url),
            trained_topic=env.get("TRAINED_TOPIC", defaults.trained_topic),
            lifecycle_topic=env.get("LIFECYCLE_TOPIC", defaults.lifecycle_topic),
            commands_topic=env.get("COMMANDS_TOPIC", defaults.commands_topic),
            lifecycle_partitions=int(
                env.get("LIFECYCLE_PARTITIONS", defaults.lifecycle_partitions)
            ),
            replication_factor=int(
                env.get("KAFKA_REPLICATION_FACTOR", defaults.replication_factor)
            ),
            min_insync_replicas=int(
                env.get("KAFKA_MIN_INSYNC_REPLICAS", defaults.min_insync_replicas)
            ),
            log_format=env.get("LOG_FORMAT", defaults.log_format),
            log_level=env.get("LOG_LEVEL", defaults.log_level),
            run_relay=env.get("RUN_RELAY", "1") not in ("0", "false", "no"),
            artifact_root=env.get("ARTIFACT_ROOT", defaults.artifact_root),
            consumer_group_prefix=env.get("CONSUMER_GROUP_PREFIX", defaults.consumer_group_prefix),
            web_port=int(env.get(f"{service.upper()}_WEB_PORT", env.get("WEB_PORT", "0"))),
        )
