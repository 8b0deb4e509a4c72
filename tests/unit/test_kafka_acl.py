"""The ACL table: who may read and write which topic, and that it matches the services' FLOWs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.activator.handlers import FLOW as ACTIVATOR
from services.approval.handlers import FLOW as APPROVAL
from services.archiver.handlers import FLOW as ARCHIVER
from services.gpu_evaluator.handlers import FLOW as EVALUATOR
from services.ingest.handlers import FLOW as INGEST
from services.validator.handlers import FLOW as VALIDATOR
from shared.kafka import acl
from shared.kafka.acl import Op, TopicNames, grants, may
from shared.kafka.auth import KafkaEndpoint, client_config, read_password, sasl_env

TOPICS = TopicNames("adapters.trained.v1", "adapters.lifecycle.v1", "adapters.commands.v1")
GRANTED = grants(TOPICS, "adapters")
T, L, C = TOPICS.trained, TOPICS.lifecycle, TOPICS.commands


def test_each_service_reads_exactly_what_its_flow_consumes() -> None:
    flows = [ACTIVATOR, APPROVAL, ARCHIVER, EVALUATOR, INGEST, VALIDATOR]
    assert {f.service: tuple(t.value for t in f.consumes) for f in flows} == {
        s: tuple(t.value for t in topics) for s, topics in acl.SERVICE_TOPICS.items()
    }


@pytest.mark.parametrize(
    ("principal", "topic", "op", "allowed"),
    [
        # the audit log: only the relay writes it; services and readers read it
        ("relay", L, Op.WRITE, True),
        ("activator", L, Op.WRITE, False),
        ("trainer", L, Op.WRITE, False),
        ("operator", L, Op.WRITE, False),
        ("auditor", L, Op.WRITE, False),
        ("validator", L, Op.READ, True),
        ("auditor", L, Op.READ, True),
        ("trainer", L, Op.READ, False),
        # submissions: only ingest's API writes them (for a proven trainer), ingest reads
        ("ingest", T, Op.WRITE, True),
        ("ingest", T, Op.READ, True),
        ("trainer", T, Op.WRITE, False),
        ("operator", T, Op.WRITE, False),
        ("trainer", T, Op.READ, False),
        # commands: only the issuer (the activator's authenticated API) writes and reads them;
        # an operator's Kafka password alone cannot put a command there
        ("activator", C, Op.WRITE, True),
        ("activator", C, Op.READ, True),
        ("operator", C, Op.WRITE, False),
        ("trainer", C, Op.WRITE, False),
        ("approval", C, Op.READ, False),
        # dead letters: a consumer writes its own topic's; the auditor reads them all
        ("ingest", T + ".dlq", Op.WRITE, True),
        ("validator", L + ".dlq", Op.WRITE, True),
        ("validator", T + ".dlq", Op.WRITE, False),
        ("activator", C + ".dlq", Op.WRITE, True),
        ("auditor", C + ".dlq", Op.READ, True),
        ("auditor", C + ".dlq", Op.WRITE, False),
        # the admin is a super user; an unknown principal may do nothing
        ("admin", L, Op.WRITE, True),
        ("mallory", T, Op.WRITE, False),
        ("mallory", L, Op.READ, False),
    ],
)
def test_who_may_do_what_on_each_topic(principal: str, topic: str, op: Op, allowed: bool) -> None:
    assert may(GRANTED, principal, "topic", topic, op) is allowed


@pytest.mark.parametrize(
    ("principal", "group", "allowed"),
    [
        ("validator", "adapters-validator", True),
        ("validator", "adapters-activator", False),  # not another service's group
        ("auditor", "reader-3f2a", True),
        ("trainer", "reader-3f2a", False),
        ("ingest", "adapters-ingest", True),
    ],
)
def test_each_service_joins_only_its_own_group(principal: str, group: str, allowed: bool) -> None:
    assert may(GRANTED, principal, "group", group, Op.READ) is allowed


def test_no_grant_is_prefixed_on_a_topic() -> None:
    """A prefixed topic grant on `adapters.lifecycle.v1` would also cover its dead letters and
    any topic named after it: topics are granted by exact name."""
    assert all(not g.prefixed for g in GRANTED if g.resource == "topic")


def test_an_endpoint_without_a_principal_is_plaintext_and_one_with_is_scram() -> None:
    assert client_config("k:9092") == {"bootstrap.servers": "k:9092"}
    config = client_config(KafkaEndpoint("k:9092", "auditor", "pw"), **{"group.id": "g"})
    assert config == {
        "bootstrap.servers": "k:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "auditor",
        "sasl.password": "pw",
        "group.id": "g",
    }
    assert "pw" not in repr(KafkaEndpoint("k:9092", "auditor", "pw"))


@pytest.mark.parametrize(
    ("subcommand", "principal"),
    [
        ("submit", "operator"),
        ("audit", "auditor"),
        ("history", "auditor"),
        ("rollback", "operator"),
    ],
)
def test_adapterctl_connects_as_the_role_its_subcommand_needs(
    subcommand: str, principal: str
) -> None:
    assert acl.cli_principal(subcommand) == principal


def test_a_process_is_given_its_own_principal_and_its_relay_the_relays(tmp_path: Path) -> None:
    assert acl.service_principal("services.validator") == "validator"
    assert acl.service_principal("services.reference_server") is None
    assert sasl_env(tmp_path, "relay", prefix="RELAY_") == {
        "RELAY_KAFKA_SASL_USERNAME": "relay",
        "RELAY_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "relay.password"),
    }


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "p"
    secret.write_text("pw\n")
    secret.chmod(0o640)
    with pytest.raises(PermissionError, match="readable by others"):
        read_password(secret)
    secret.chmod(0o600)
    assert read_password(secret) == "pw"
