"""A log nobody can quietly rewrite (issue #16), on real Kafka and PostgreSQL: the relay
signs every event and checkpoints the chain heads into cold storage, and
`adapterctl audit verify` names each rewrite an insider with broker access can make: a
forged event with recomputed seq, prev_hash and hash, a dropped tail, a rewritten
history re-sealed end to end; with --against-registry, the log and the registry's
disagreement too. A row altered in the registry's outbox is refused by the relay, never
signed or published."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.chain import seal
from shared.codec import Codec
from shared.coldstore.directory import DirectoryColdStorage
from shared.events import RevisionRolledBack
from shared.kafka.producer import make_producer
from shared.kafka.reader import LogRecord, read_topic
from shared.kafka.topics import TopicSpec, admin_client, provision
from shared.logseal import event_headers
from shared.registry.relay import OutboxRelay, RelayConfig
from shared.registry.store import PostgresRegistry
from shared.signing import Signer, load_or_create_signer
from tests.conftest import Infra
from tests.eventually import eventually
from tests.factories import lifecycle, to_active
from tests.integration.conftest import create_database
from tests.verifiers import assert_agree, build_logcheck, run_logcheck

ADAPTERCTL = Path(sys.executable).parent / "adapterctl"
CODEC = Codec.default()
PROD = "production"
MALLORY = Signer(Ed25519PrivateKey.generate())


@dataclass
class SignedLog:
    infra: Infra
    database: str
    topic: str
    root: Path
    adapters: list[str]

    def env(self) -> dict[str, str]:
        return {
            **self.infra.env(),
            "DATABASE_URL": self.database,
            "LOG_PUBLIC_KEYS": str(self.root / "log.key.pub"),
            "LOG_CHECKPOINTS": str(self.root / "cold"),
        }

    def verify(self, *argv: str, topic: str | None = None) -> tuple[int, dict[str, Any]]:
        result = subprocess.run(
            [str(ADAPTERCTL), "audit", "verify", "--json", "--topic", topic or self.topic, *argv],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode in (0, 1), result.stdout + result.stderr
        report = json.loads(result.stdout)
        self.second_opinion(report, topic or self.topic, argv)
        return result.returncode, report

    def second_opinion(self, ours: dict[str, Any], topic: str, argv: tuple[str, ...]) -> None:
        """The independent verifier reads the same topic from Kafka and the same cold
        storage, and must say the same, event for event (the registry aside: it has none)."""
        env = self.env()
        options = [a for a in argv if a != "--against-registry"]
        _, theirs = run_logcheck(
            "verify", "--bootstrap", self.infra.bootstrap_servers, "--topic", topic,
            "--user", env["KAFKA_SASL_USERNAME"],
            "--password-file", env["KAFKA_SASL_PASSWORD_FILE"],
            "--checkpoints", str(self.root / "cold"), "--log-key", str(self.root / "log.key.pub"),
            *options,
        )  # fmt: skip
        mine = [p for p in ours["problems"] if p["code"] != "registry_disagrees"]
        assert_agree({**ours, "problems": mine, "ok": not mine}, theirs)

    def records(self) -> list[LogRecord]:
        return read_topic(self.infra.kafka, self.topic)

    def copy(self, name: str, records: list[LogRecord]) -> str:
        """A new topic holding `records` (headers kept), as an insider would recreate the log."""
        topic = f"{self.topic}-{name}"
        provision(admin_client(self.infra.kafka), [TopicSpec(topic, 3)])
        producer = make_producer(self.infra.kafka, partitioner="murmur2_random")
        for r in records:
            producer.produce(topic, key=r.key, value=r.value, headers=list(r.headers))
        assert producer.flush(30) == 0
        return topic


def events_of(records: list[LogRecord], adapter: str) -> list[tuple[LogRecord, Any]]:
    found = [(r, CODEC.decode(r.value or b"")) for r in records if r.key == adapter.encode()]
    return sorted(found, key=lambda pair: pair[1].envelope.seq)


@pytest.fixture(scope="module")
def signed_log(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedLog]:
    """Two adapters taken to production through the registry; the relay signs and checkpoints."""
    build_logcheck()
    root = tmp_path_factory.mktemp("signed-log")
    token = uuid.uuid4().hex[:8]

    async def build() -> SignedLog:
        database = await create_database(infra)
        topic = f"signed-{token}"
        provision(admin_client(infra.kafka), [TopicSpec(topic, 3)])
        registry = await PostgresRegistry.connect(database, CODEC)
        config = RelayConfig(
            dsn=database,
            kafka=infra.kafka,
            topic=topic,
            signer=load_or_create_signer(root / "log.key"),
            cold=DirectoryColdStorage(root / "cold"),
            checkpoint_interval_s=0.2,
        )
        relay, stop = OutboxRelay(config), asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        adapters = [f"summarizer-{token}", f"classifier-{token}"]
        try:
            for adapter in adapters:
                for event in to_active(adapter, "sha256:" + "a" * 64, PROD):
                    await registry.transition(event)
            log = SignedLog(infra, database, topic, root, adapters)
            await asyncio.to_thread(eventually, lambda: _anchored(log), timeout=60)
        finally:
            stop.set()
            await running
            await registry.close()
        return log

    yield asyncio.run(build())


def _anchored(log: SignedLog) -> bool:
    assert len(log.records()) == 10, "not all published yet"
    status, report = log.verify()
    assert status == 0 and report["unanchored"] == [], report
    return True


def test_the_relays_log_verifies_signed_anchored_and_agreeing_with_the_registry(
    signed_log: SignedLog,
) -> None:
    status, report = signed_log.verify("--against-registry")

    assert status == 0, report["problems"]
    assert report["signatures_checked"] and report["checkpoints"] >= 1
    assert all(r.header("log_signature") for r in signed_log.records())


def test_a_forged_event_with_recomputed_hashes_is_named_and_the_registry_disagrees(
    signed_log: SignedLog,
) -> None:
    adapter = signed_log.adapters[0]
    head = events_of(signed_log.records(), adapter)[-1][1].envelope
    fake = lifecycle(RevisionRolledBack, adapter, head.revision, PROD, restored_revision=None)
    forged = seal(fake, seq=head.seq + 1, prev_hash=head.hash)
    unsigned = signed_log.copy("forged", [*signed_log.records()])
    producer = make_producer(signed_log.infra.kafka, partitioner="murmur2_random")
    producer.produce(unsigned, key=adapter.encode(), value=CODEC.encode(forged))
    env = forged.envelope
    mallory = event_headers(MALLORY, env.adapter, env.seq, env.hash)
    resigned = signed_log.copy("resigned", [*signed_log.records()])
    producer.produce(resigned, key=adapter.encode(), value=CODEC.encode(forged), headers=mallory)
    assert producer.flush(30) == 0

    for topic, code in (
        (unsigned, "log_signature_missing"),
        (resigned, "log_signature_unknown_key"),
    ):
        status, report = signed_log.verify(
            "--copy-of", signed_log.topic, "--against-registry", topic=topic
        )
        assert status == 1
        first = report["first_problem"]
        assert (first["code"], first["event_id"]) == (code, env.event_id), report["problems"]
        disagreement = [p for p in report["problems"] if p["code"] == "registry_disagrees"]
        assert len(disagreement) == 1 and "never committed" in disagreement[0]["message"]
        assert [u["seq"] for u in report["unanchored"]] == [env.seq]


def test_a_dropped_tail_is_named_by_the_checkpoints(signed_log: SignedLog) -> None:
    adapter = signed_log.adapters[1]
    tail = {r.offset for r, _ in events_of(signed_log.records(), adapter)[-2:]}
    kept = [r for r in signed_log.records() if not (r.key == adapter.encode() and r.offset in tail)]
    status, report = signed_log.verify(
        "--copy-of", signed_log.topic, topic=signed_log.copy("dropped", kept)
    )

    assert status == 1
    codes = [(p["code"], p["adapter"]) for p in report["problems"]]
    assert codes == [("truncated", adapter)], report["problems"]
    assert "seq 5" in report["problems"][0]["message"]
    assert "ends at seq 3" in report["problems"][0]["message"]


def test_a_rewritten_history_resealed_end_to_end_is_named(signed_log: SignedLog) -> None:
    """The insider rewrites seq 4 (the approval) and re-seals and re-signs everything after
    it with a key of their own: the chain holds, the signatures and checkpoint do not."""
    adapter = signed_log.adapters[0]
    chain = events_of(signed_log.records(), adapter)
    rewritten, prev_hash = [], chain[2][1].envelope.hash
    for record, event in chain[3:5]:
        if event.envelope.seq == 4:
            event = dataclasses.replace(event, approvers=["mallory"])
        event = seal(event, seq=event.envelope.seq, prev_hash=prev_hash)
        prev_hash = event.envelope.hash
        env = event.envelope
        headers = tuple(event_headers(MALLORY, env.adapter, env.seq, env.hash))
        rewritten.append(dataclasses.replace(record, value=CODEC.encode(event), headers=headers))
    others = [r for r in signed_log.records() if r.key != adapter.encode()]
    kept = [r for r, _ in chain[:3]]
    copy = signed_log.copy("rewritten", kept + rewritten + others)
    status, report = signed_log.verify("--copy-of", signed_log.topic, topic=copy)

    assert status == 1  # the checkpoint proves seqs 1-5: their own signatures add nothing
    codes = sorted({p["code"] for p in report["problems"]})
    assert codes == ["checkpoint_mismatch"], report["problems"]
    _, strict = signed_log.verify("--copy-of", signed_log.topic, "--every-signature", topic=copy)
    codes = sorted({p["code"] for p in strict["problems"]})
    assert codes == ["checkpoint_mismatch", "log_signature_unknown_key"], strict["problems"]
    mismatch = next(p for p in report["problems"] if p["code"] == "checkpoint_mismatch")
    assert (mismatch["adapter"], mismatch["seq"]) == (adapter, 5)


async def test_a_row_altered_in_the_outbox_is_never_signed_or_published(
    infra: Infra, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    database = await create_database(infra)
    topic = unique("tampered")
    provision(admin_client(infra.kafka), [TopicSpec(topic, 3)])
    registry = await PostgresRegistry.connect(database, CODEC)
    adapter = unique("victim")
    events = to_active(adapter, "sha256:" + "b" * 64, PROD)
    for event in events[:3]:
        await registry.transition(event)
    conn = await asyncpg.connect(database)
    payload = await conn.fetchval("SELECT payload FROM outbox WHERE seq = 3")
    event: Any = CODEC.decode(bytes(payload))
    altered = dataclasses.replace(event, report_digest="sha256:" + "0" * 64)  # hash kept
    await conn.execute("UPDATE outbox SET payload = $1 WHERE seq = 3", CODEC.encode(altered))
    relay = OutboxRelay(
        RelayConfig(
            dsn=database,
            kafka=infra.kafka,
            topic=topic,
            signer=load_or_create_signer(tmp_path / "log.key"),
            cold=DirectoryColdStorage(tmp_path / "cold"),
        )
    )
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(3)
    finally:
        stop.set()
        await running
        await registry.close()
    unpublished = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    await conn.close()
    records = read_topic(infra.kafka, topic)
    assert unpublished == 1 and len(records) == 2  # seq 1 and 2 went out; 3 never did
    assert all(r.header("log_signature") for r in records)
