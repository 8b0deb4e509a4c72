"""A real validator process serves health and Prometheus metrics on its web port, and the
counters move when it ignores an event or dead-letters a record it cannot decode."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.codec import Codec
from shared.events import AdapterTrained
from shared.kafka.producer import make_producer, publish
from shared.kafka.topics import dlq_of
from tests.conftest import Infra
from tests.eventually import eventually
from tests.samples import sample
from tests.stack import ServiceDied, Stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, body = _get(f"{base}/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(base: str, name: str, **labels: str) -> float:
    return _samples(base).get((name, frozenset(labels.items())), 0.0)


def _until(what: str, check: Callable[[], bool], stack: Stack, timeout_s: float = 60) -> None:
    def checked() -> bool:
        if stack.processes["validator"].poll() is not None:
            raise ServiceDied(stack.log_of("validator"))
        try:
            return check()
        except (urllib.error.URLError, ConnectionError):
            return False

    try:
        eventually(checked, timeout=timeout_s, interval=0.3)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}\n{stack.log_of('validator')}") from None


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("stack"))
    await stack.create()
    try:
        yield stack
    finally:
        stack.stop()


def test_validator_serves_health_and_its_counters_move_with_the_events_it_consumes(
    stack: Stack,
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    stack.start("validator", VALIDATOR_WEB_PORT=str(port))

    _until("the web port", lambda: _get(f"{base}/health/live")[0] == 200, stack)
    _until("readiness", lambda: _get(f"{base}/health/ready")[0] == 200, stack)
    status, body = _get(f"{base}/health/ready")
    assert status == 200
    assert json.loads(body) == {"status": "ready", "service": "validator", "reasons": {}}
    assert _value(base, "adapters_ready", service="validator") == 1

    topic = stack.lifecycle_topic
    dead = dict(service="validator", topic=topic, event_type="undecodable")
    ignored = dict(service="validator", topic=topic, event_type="AdapterTrained")
    before_dead = _value(base, "adapters_events_total", outcome="dead_lettered", **dead)
    before_ignored = _value(base, "adapters_events_total", outcome="ignored", **ignored)
    before_failures = _value(
        base, "adapters_failures_total", service="validator", reason="undecodable"
    )

    producer = make_producer(stack.infra.kafka)
    publish(producer, topic, key=b"garbage", value=b"\x00not avro at all")
    publish(producer, topic, key=b"other", value=Codec.from_env().encode(sample(AdapterTrained)))

    def moved() -> bool:
        return (
            _value(base, "adapters_events_total", outcome="dead_lettered", **dead)
            == before_dead + 1
            and _value(base, "adapters_events_total", outcome="ignored", **ignored)
            == before_ignored + 1
        )

    _until("the counters to move", moved, stack)
    assert (
        _value(base, "adapters_failures_total", service="validator", reason="undecodable")
        == before_failures + 1
    )
    assert [r.key for r in stack.records(dlq_of(topic))] == [b"garbage"]

    def lag_reported() -> bool:
        lags = [
            value
            for (name, labels), value in _samples(base).items()
            if name == "adapters_consumer_lag" and ("topic", topic) in labels
        ]
        return len(lags) == 3 and sum(lags) == 0  # every partition, all committed

    _until("consumer lag to reach zero", lag_reported, stack)
    text = _get(f"{base}/metrics")[1].decode()
    assert 'adapters_relay_leader{service="validator"}' in text
