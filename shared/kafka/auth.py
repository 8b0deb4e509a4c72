"""Who a Kafka client is: the brokers and the SASL/SCRAM credentials it connects with.

Every client in the project (confluent-kafka producers, consumers and admin clients, and
faust's aiokafka: `shared.kafka.app`) is built from one `KafkaEndpoint`, so a service, a
CLI and a test connect the same way. A bare bootstrap string is an endpoint without
credentials: the brokers of `infra/` refuse it (SASL_PLAINTEXT listeners, ACLs with no
anonymous access).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

SCRAM = "SCRAM-SHA-512"
# The throwaway consumer groups of readers that never join nor commit (an audit's replay).
READER_GROUP_PREFIX = "reader-"


@dataclass(frozen=True, slots=True)
class KafkaEndpoint:
    """Brokers, and the principal a client authenticates as (none: PLAINTEXT)."""

    bootstrap_servers: str
    username: str | None = None
    password: str | None = None
    mechanism: str = SCRAM

    @property
    def authenticated(self) -> bool:
        return self.username is not None

    @property
    def protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.authenticated else "PLAINTEXT"

    def config(self) -> dict[str, Any]:
        """librdkafka's settings for this endpoint (confluent-kafka clients)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.authenticated:
            config |= {
                "security.protocol": self.protocol,
                "sasl.mechanisms": self.mechanism,
                "sasl.username": self.username,
                "sasl.password": self.password or "",
            }
        return config

    def as_user(self, username: str, password: str) -> KafkaEndpoint:
        return KafkaEndpoint(self.bootstrap_servers, username, password, self.mechanism)

    def __repr__(self) -> str:  # never the password
        who = f" as {self.username}" if self.authenticated else ""
        return f"KafkaEndpoint({self.bootstrap_servers}{who})"


# What a function that connects to Kafka accepts: an endpoint, or brokers alone.
Kafka: TypeAlias = KafkaEndpoint | str


def endpoint(kafka: Kafka) -> KafkaEndpoint:
    return kafka if isinstance(kafka, KafkaEndpoint) else KafkaEndpoint(kafka)


def client_config(kafka: Kafka, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka settings for `kafka`, with `overrides` on top."""
    return endpoint(kafka).config() | overrides


def sasl_env(credentials_dir: Path, principal: str, *, prefix: str = "") -> dict[str, str]:
    """The variables that make a process connect as `principal`, whose password file is in
    `credentials_dir` (`prefix="RELAY_"`: its outbox relay's)."""
    return {
        f"{prefix}KAFKA_SASL_USERNAME": principal,
        f"{prefix}KAFKA_SASL_PASSWORD_FILE": str(credentials_dir / f"{principal}.password"),
    }


def read_password(path: Path) -> str:
    """A password file's first line; refused when others may read it."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others: chmod 600 it")
    return path.read_text().splitlines()[0] if path.stat().st_size else ""
