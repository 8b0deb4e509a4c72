"""Who may do what on the bus: the project's Kafka principals and the ACLs they are granted.

The brokers of `infra/` authenticate every client (SASL/SCRAM-SHA-512) and authorise every
request (KRaft's StandardAuthorizer, no access where no ACL allows it). `grants` is the one
table of what each principal may do, for a given set of topic names, so the local stack,
a private test stack and a production cluster get the same rules:

- only `relay` (the registry's outbox relay) writes the lifecycle topic, the audit log;
- only `activator` writes the commands topic: its HTTP API is the command issuer, which
  puts a command there only for an operator proven by a bearer token (ADR 0014);
- only `ingest` writes the trained topic: its HTTP API puts a submission there for the
  trainer a bearer token proves (training clusters hold no Kafka principal, ADR 0017);
- each service reads the topics its FLOW consumes, in its own consumer group, and writes
  only their dead-letter topics;
- `auditor` reads the lifecycle topic and the dead letters, and writes nothing;
  `operator` reads them too (on call).

`admin` (topics, users, ACLs) and the brokers' own principals are super users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from shared.kafka.auth import READER_GROUP_PREFIX
from shared.kafka.topics import dlq_of

ADMIN = "admin"
RELAY = "relay"
OPERATOR = "operator"
AUDITOR = "auditor"
ACTIVATOR = "activator"
INGEST = "ingest"


class Logical(StrEnum):
    TRAINED = "trained"
    LIFECYCLE = "lifecycle"
    COMMANDS = "commands"


# What each service consumes: the services' FLOWs say the same (a unit test holds them equal).
SERVICE_TOPICS: Mapping[str, tuple[Logical, ...]] = {
    "ingest": (Logical.TRAINED,),
    "validator": (Logical.LIFECYCLE,),
    "gpu_evaluator": (Logical.LIFECYCLE,),
    "approval": (Logical.LIFECYCLE,),
    "activator": (Logical.LIFECYCLE, Logical.COMMANDS),
    "archiver": (Logical.LIFECYCLE,),
}

# The brokers' own principals (super users): between brokers, and to the controller.
BROKER_PRINCIPALS: tuple[str, ...] = ("broker", "controller")

# Every principal the project's clients connect as, besides `admin`.
# Training clusters have none: they submit through ingest's API with a trainer's bearer
# token, and only `ingest` writes the trained topic (ADR 0017).
PRINCIPALS: tuple[str, ...] = (*SERVICE_TOPICS, RELAY, OPERATOR, AUDITOR)


# The principal adapterctl connects as, by subcommand: an auditor reads the log, an
# operator the rest (rollout commands go through the activator's
# HTTP API with the operator's bearer token, not to Kafka).
CLI_PRINCIPALS: Mapping[str, str] = {
    "audit": AUDITOR,
    "history": AUDITOR,
    "evidence": AUDITOR,
}


def cli_principal(subcommand: str) -> str:
    return CLI_PRINCIPALS.get(subcommand, OPERATOR)


def service_principal(module: str) -> str | None:
    """The principal `python -m <module>` connects as: a service's own, else None."""
    name = module.removeprefix("services.")
    return name if name in SERVICE_TOPICS else None


class Op(StrEnum):
    READ = "READ"
    WRITE = "WRITE"


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """`principal` may `operation` the topic or group `name` (a prefix when `prefixed`)."""

    principal: str
    resource: str  # "topic" or "group"
    name: str
    operation: Op
    prefixed: bool = False


@dataclass(frozen=True, slots=True)
class TopicNames:
    trained: str
    lifecycle: str
    commands: str

    def of(self, logical: Logical) -> str:
        return {
            Logical.TRAINED: self.trained,
            Logical.LIFECYCLE: self.lifecycle,
            Logical.COMMANDS: self.commands,
        }[logical]


def grants(topics: TopicNames, group_prefix: str) -> list[Grant]:
    """Every ACL the principals need on `topics`, services in groups `<prefix>-<service>`."""
    out: list[Grant] = []
    for service, consumed in SERVICE_TOPICS.items():
        out.append(Grant(service, "group", f"{group_prefix}-{service}", Op.READ, prefixed=True))
        for logical in consumed:
            name = topics.of(logical)
            out.append(Grant(service, "topic", name, Op.READ))
            out.append(Grant(service, "topic", dlq_of(name), Op.WRITE))
    out += [
        Grant(RELAY, "topic", topics.lifecycle, Op.WRITE),
        Grant(INGEST, "topic", topics.trained, Op.WRITE),
        Grant(ACTIVATOR, "topic", topics.commands, Op.WRITE),
        Grant(OPERATOR, "topic", topics.lifecycle, Op.READ),
        Grant(OPERATOR, "group", READER_GROUP_PREFIX, Op.READ, prefixed=True),
        Grant(AUDITOR, "topic", topics.lifecycle, Op.READ),
        Grant(AUDITOR, "group", READER_GROUP_PREFIX, Op.READ, prefixed=True),
    ]
    # Auditors and on-call operators read the dead letters (docs/runbook.md, section 5).
    out += [
        Grant(reader, "topic", dlq_of(topics.of(logical)), Op.READ)
        for logical in Logical
        for reader in (AUDITOR, OPERATOR)
    ]
    return sorted(set(out))


def may(granted: Iterable[Grant], principal: str, resource: str, name: str, op: Op) -> bool:
    """Whether `granted` lets `principal` do `op` on `name` (admin: everything)."""
    if principal == ADMIN:
        return True
    return any(
        g.principal == principal
        and g.resource == resource
        and g.operation == op
        and (name.startswith(g.name) if g.prefixed else name == g.name)
        for g in granted
    )


def _binding(grant: Grant) -> AclBinding:
    return AclBinding(
        ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
        grant.name,
        ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
        f"User:{grant.principal}",
        "*",
        AclOperation.READ if grant.operation is Op.READ else AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )


def apply_grants(admin: AdminClient, granted: Sequence[Grant], timeout_s: float = 30.0) -> None:
    """Create the ACLs (an existing one is left as it is); raises if the broker refuses."""
    if not granted:
        return
    futures = admin.create_acls([_binding(g) for g in granted], request_timeout=timeout_s)
    for future in futures.values():
        future.result()


def upsert_users(admin: AdminClient, passwords: Mapping[str, str], timeout_s: float = 30.0) -> None:
    """Set each user's SCRAM-SHA-512 password (creating the user); idempotent."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    changes: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, info, password.encode())
        for user, password in passwords.items()
    ]
    if not changes:
        return
    futures = admin.alter_user_scram_credentials(changes, request_timeout=timeout_s)
    for user, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            raise KafkaException(f"cannot set the SCRAM credentials of {user}: {exc}") from exc
