"""The consumer runner dead-letters what it cannot decode and goes on with the next message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from shared.codec import Codec
from shared.events import AdapterTrained
from shared.kafka.producer import make_producer, publish
from shared.kafka.reader import LogRecord, read_topic
from shared.kafka.topics import TopicSpec, admin_client, dlq_of, provision
from tests.conftest import REPO, Infra
from tests.eventually import eventually
from tests.samples import sample


def _create_topics(infra: Infra, *names: str) -> None:
    provision(admin_client(infra.kafka), [TopicSpec(n, 1) for n in names])


def _wait_for(infra: Infra, topic: str, count: int, timeout_s: float = 60) -> list[LogRecord]:
    def enough() -> list[LogRecord]:
        records = read_topic(infra.kafka, topic)
        assert len(records) >= count, f"{topic} has {len(records)} records, expected {count}"
        return records

    return eventually(enough, timeout=timeout_s, interval=0.5)


def test_garbage_and_unknown_fingerprint_go_to_dlq_and_the_next_good_message_is_handled(
    infra: Infra, unique: Callable[[str], str]
) -> None:
    source, out = unique("runner.source"), unique("runner.out")
    _create_topics(infra, source, dlq_of(source), out)
    codec = Codec.from_env()
    good = sample(AdapterTrained)
    good_bytes = codec.encode(good)
    unknown = b"\xc3\x01" + b"\x00\x01\x02\x03\x04\x05\x06\x07" + good_bytes[10:]

    producer = make_producer(infra.kafka)
    publish(producer, source, key=b"garbage", value=b"\x00not avro at all")
    publish(producer, source, key=b"unknown", value=unknown)
    publish(producer, source, key=good.adapter.encode(), value=good_bytes)

    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.apps.echo", source, out, unique("group")],
        cwd=REPO,
        env=infra.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        handled = _wait_for(infra, out, 1)
        dead = _wait_for(infra, dlq_of(source), 2)
        assert worker.poll() is None, "the worker must still be running"
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")

    assert [r.value for r in handled] == [good.adapter.encode()], output
    by_key = {r.key: r for r in dead}
    assert set(by_key) == {b"garbage", b"unknown"}
    assert by_key[b"garbage"].value == b"\x00not avro at all", "the original bytes are kept"
    assert "undecodable" in (by_key[b"garbage"].header("dlq.reason") or "")
    assert "fingerprint" in (by_key[b"unknown"].header("dlq.reason") or "")
    assert "0001020304050607" in (by_key[b"unknown"].header("dlq.reason") or "")
    for record in dead:
        assert record.header("dlq.source.topic") == source
        assert record.header("dlq.service") == "echo"
        assert record.header("dlq.source.offset") in {"0", "1"}
