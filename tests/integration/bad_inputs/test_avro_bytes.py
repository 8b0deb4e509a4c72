"""The corpus's undecodable record values, produced to a real topic and read by a real
consumer (the echo service: a faust worker, the kernel's Dispatcher and FaustDeadLetters):
each lands in the topic's `.dlq` with its key, its bytes and a reason that says what was
wrong, and the good record produced after all of them is still handled."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared.codec import Codec
from shared.events import AdapterTrained
from shared.kafka.producer import make_producer
from shared.kafka.reader import LogRecord, read_topic
from shared.kafka.topics import TopicSpec, admin_client, dlq_of, provision
from tests.conftest import REPO, Infra
from tests.corpus.bad_inputs import Entry, load
from tests.corpus.bad_inputs.messages import message_value
from tests.eventually import eventually
from tests.samples import sample

ENTRIES = load("avro_bytes")
GOOD_KEY = b"the-good-record-after-them"


@dataclass(frozen=True)
class Consumed:
    dead: dict[bytes, LogRecord]  # by the key each entry was produced with
    handled: list[bytes]
    source: str
    worker_alive: bool
    output: str


def _wait_for(infra: Infra, topic: str, count: int, timeout_s: float = 60) -> list[LogRecord]:
    """The topic's records once there are `count`; what there is after `timeout_s`."""
    records: list[LogRecord] = []

    def enough() -> bool:
        records[:] = read_topic(infra.kafka, topic)
        return len(records) >= count

    with contextlib.suppress(AssertionError):  # the caller asserts on what arrived
        eventually(enough, timeout=timeout_s, interval=0.5)
    return records


@pytest.fixture(scope="module")
def consumed(infra: Infra) -> Iterator[Consumed]:
    token = uuid.uuid4().hex[:10]
    source, out = f"bad-avro-{token}.source", f"bad-avro-{token}.out"
    provision(
        admin_client(infra.kafka),
        [TopicSpec(source, 1), TopicSpec(dlq_of(source), 1), TopicSpec(out, 1)],
    )
    codec = Codec.from_env()
    producer = make_producer(infra.kafka)
    for entry in ENTRIES:
        producer.produce(source, key=entry.id.encode(), value=message_value(entry.input, codec))
    producer.produce(source, key=GOOD_KEY, value=codec.encode(sample(AdapterTrained)))
    assert producer.flush(30) == 0, "the corpus was not acknowledged by the broker"

    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.apps.echo", source, out, f"bad-avro-{token}"],
        cwd=REPO,
        env=infra.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        handled = _wait_for(infra, out, 1)
        dead = _wait_for(infra, dlq_of(source), len(ENTRIES))
        alive = worker.poll() is None
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    yield Consumed(
        dead={r.key or b"": r for r in dead},
        handled=[r.value or b"" for r in handled],
        source=source,
        worker_alive=alive,
        output=output[-4000:],
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_each_undecodable_value_is_dead_lettered_with_its_bytes_and_reason(
    consumed: Consumed, entry: Entry
) -> None:
    record = consumed.dead.get(entry.id.encode())
    assert record is not None, f"{entry.id} never reached the dead-letter topic\n{consumed.output}"
    sent = message_value(entry.input, Codec.from_env())
    assert record.value == sent or (sent is None and not record.value), "the bytes are kept"
    reason = record.header("dlq.reason") or ""
    assert entry.expect["dlq_reason"] in reason, reason
    assert reason.startswith("undecodable: ")
    assert record.header("dlq.error_type") == "CodecError"
    assert record.header("dlq.source.topic") == consumed.source


def test_the_consumer_goes_on_to_the_good_record_after_them(consumed: Consumed) -> None:
    assert consumed.worker_alive, consumed.output
    assert consumed.handled == [sample(AdapterTrained).adapter.encode()], consumed.output
    assert set(consumed.dead) == {e.id.encode() for e in ENTRIES}, "nothing else is dead-lettered"
