"""The brokers authenticate and authorise: an insider with network access to Kafka but no
credentials reads and writes nothing, and each principal may do exactly what the ACL table
says. Proven with confluent-kafka and with Kafka's own console producer and consumer."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from shared.kafka import acl
from shared.kafka.acl import Op, TopicNames, apply_grants, grants, may
from shared.kafka.auth import Kafka, KafkaEndpoint, client_config
from shared.kafka.producer import make_producer, publish
from shared.kafka.reader import iter_topic
from shared.kafka.topics import TopicSpec, admin_client, dlq_of, provision
from tests.conftest import REPO, Infra

pytestmark = pytest.mark.skipif(
    not (REPO / ".cache" / "kafka" / "libs").is_dir(), reason="no Kafka jars: run make setup"
)
LIBS = REPO / ".cache" / "kafka" / "libs"


@dataclass(frozen=True)
class Topics:
    names: TopicNames

    @property
    def all(self) -> list[str]:
        main = [self.names.trained, self.names.lifecycle, self.names.commands]
        return main + [dlq_of(t) for t in main]


@pytest.fixture(scope="module")
def topics(infra: Infra) -> Iterator[Topics]:
    if infra.credentials_dir is None:
        pytest.skip("these brokers run without authentication (KAFKA_CREDENTIALS_DIR unset)")
    token = uuid.uuid4().hex[:8]
    names = TopicNames(f"a{token}.trained", f"a{token}.lifecycle", f"a{token}.commands")
    made = Topics(names)
    admin = admin_client(infra.kafka)
    provision(admin, [TopicSpec(t, 1) for t in made.all])
    apply_grants(admin, grants(names, "adapters"))
    for topic in made.all:  # one record each, so a read has something to fetch
        publish(make_producer(infra.kafka), topic, key=b"k", value=b"seed")
    yield made
    admin.delete_topics(made.all)


def _writes(kafka: Kafka, topic: str) -> bool:
    producer = make_producer(kafka, **{"message.timeout.ms": 2000, "logger": _QUIET})
    try:
        publish(producer, topic, key=b"k", value=b"probe", timeout_s=8)
    except (KafkaException, TimeoutError):
        return False
    return True


def _reads(kafka: KafkaEndpoint, topic: str) -> bool:
    # A service reads in its own group; anyone else in a throwaway reader's group.
    service = kafka.username in acl.SERVICE_TOPICS
    group = f"adapters-{kafka.username}-probe" if service else None
    try:
        return len(list(iter_topic(kafka, topic, timeout_s=6, group=group))) > 0
    except (KafkaException, TimeoutError):
        return False


def _high_watermark(infra: Infra, topic: str) -> int:
    """How many records `topic` (one partition) holds, as the admin sees it."""
    consumer = Consumer(client_config(infra.kafka, **{"group.id": f"reader-{uuid.uuid4().hex}"}))
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


class _Quiet:
    """A logger for librdkafka's connection complaints, which these tests cause on purpose."""

    def log(self, *_: object) -> None:
        return None


_QUIET = _Quiet()


def test_a_client_without_credentials_can_neither_write_nor_read_any_project_topic(
    infra: Infra, topics: Topics
) -> None:
    anonymous = KafkaEndpoint(infra.bootstrap_servers)  # network access, no credentials
    before = {t: _high_watermark(infra, t) for t in topics.all}

    for topic in topics.all:
        assert not _writes(anonymous, topic), f"an anonymous client wrote to {topic}"
        assert not _reads(anonymous, topic), f"an anonymous client read {topic}"
    assert {t: _high_watermark(infra, t) for t in topics.all} == before


def test_a_wrong_password_is_refused_like_none(infra: Infra, topics: Topics) -> None:
    impostor = KafkaEndpoint(infra.bootstrap_servers, acl.RELAY, "not-the-password")

    assert not _writes(impostor, topics.names.lifecycle)
    assert not _reads(impostor, topics.names.lifecycle)


def test_each_principal_may_do_exactly_what_the_acl_table_says(
    infra: Infra, topics: Topics
) -> None:
    granted = grants(topics.names, "adapters")
    wrong: list[str] = []
    for principal in (*acl.PRINCIPALS, acl.ADMIN):
        kafka = infra.as_principal(principal)
        for topic in topics.all:
            expected = may(granted, principal, "topic", topic, Op.WRITE)
            if _writes(kafka, topic) != expected:
                wrong.append(f"{principal} {'could not' if expected else 'could'} write {topic}")
        for topic in (topics.names.trained, topics.names.lifecycle, topics.names.commands):
            expected = may(granted, principal, "topic", topic, Op.READ)
            if _reads(kafka, topic) != expected:
                wrong.append(f"{principal} {'could not' if expected else 'could'} read {topic}")
    assert wrong == []


# -- Kafka's own tools --------------------------------------------------------------------


def _client_properties(path: Path, kafka: KafkaEndpoint | None) -> Path:
    """A Java client's properties file: SASL/SCRAM as `kafka`'s principal, or nothing."""
    lines = []
    if kafka is not None and kafka.authenticated:
        lines = [
            "security.protocol=SASL_PLAINTEXT",
            "sasl.mechanism=SCRAM-SHA-512",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{kafka.username}" password="{kafka.password}";',
        ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _console(tool: str, args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["java", "-cp", f"{LIBS}/*", f"org.apache.kafka.tools.{tool}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _produce(infra: Infra, topic: str, properties: Path) -> subprocess.CompletedProcess[str]:
    return _console(
        "ConsoleProducer",
        [
            "--bootstrap-server", infra.bootstrap_servers, "--topic", topic,
            "--producer.config", str(properties), "--sync",
            "--producer-property", "max.block.ms=5000",
            "--producer-property", "delivery.timeout.ms=6000",
            "--producer-property", "request.timeout.ms=5000",
        ],
        stdin="forged\n",
    )  # fmt: skip


def test_kafkas_console_producer_writes_only_with_a_principal_allowed_to(
    infra: Infra, topics: Topics, tmp_path: Path
) -> None:
    anonymous = _client_properties(tmp_path / "anonymous.properties", None)
    ingest = _client_properties(tmp_path / "ingest.properties", infra.as_principal("ingest"))
    trained, lifecycle = topics.names.trained, topics.names.lifecycle
    before = {t: _high_watermark(infra, t) for t in (trained, lifecycle)}

    _produce(infra, lifecycle, anonymous)  # no credentials: the broker closes the connection
    _produce(infra, trained, anonymous)
    refused = _produce(infra, lifecycle, ingest)  # ingest may not write the audit log
    assert _high_watermark(infra, lifecycle) == before[lifecycle]
    assert _high_watermark(infra, trained) == before[trained]
    assert "TopicAuthorizationException" in refused.stderr + refused.stdout

    allowed = _produce(infra, trained, ingest)  # its API's submissions go there
    assert allowed.returncode == 0, allowed.stderr
    assert _high_watermark(infra, trained) == before[trained] + 1


def test_kafkas_console_consumer_reads_the_log_only_as_a_reader(
    infra: Infra, topics: Topics, tmp_path: Path
) -> None:
    def consume(properties: Path) -> subprocess.CompletedProcess[str]:
        return _console(
            "consumer.ConsoleConsumer",
            [
                "--bootstrap-server", infra.bootstrap_servers, "--topic", topics.names.lifecycle,
                "--from-beginning", "--max-messages", "1", "--timeout-ms", "8000",
                "--group", f"reader-{uuid.uuid4().hex}",
                "--consumer.config", str(properties),
            ],
        )  # fmt: skip

    anonymous = consume(_client_properties(tmp_path / "a.properties", None))
    ingest = consume(_client_properties(tmp_path / "i.properties", infra.as_principal("ingest")))
    auditor = consume(_client_properties(tmp_path / "u.properties", infra.as_principal("auditor")))

    assert "seed" not in anonymous.stdout and "seed" not in ingest.stdout  # not its group
    assert auditor.stdout.splitlines() == ["seed"], auditor.stderr
