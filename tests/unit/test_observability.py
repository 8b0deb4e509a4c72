"""Metrics and health logic without a broker or a database: fakes for both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import KafkaException

from shared.backoff import Backoff
from shared.codec import Codec, CodecError
from shared.events import AdapterTrained, RevisionRegistered
from shared.kafka.dispatch import Dispatcher, Outcome, PermanentError, RawRecord
from shared.observability import (
    Health,
    KafkaProbe,
    Metrics,
    consumer_lag,
    failure_reason,
    postgres_probe,
    web_app,
)
from tests.samples import sample


class FakeDeadLetters:
    async def send(self, record: RawRecord, headers: Sequence[tuple[str, bytes]]) -> None:
        return None


async def _no_sleep(_: float) -> None:
    return None


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"service": "svc", **labels}) or 0.0


def _dispatcher(metrics: Metrics, handlers: dict[type, Any]) -> Dispatcher:
    return Dispatcher(
        service="svc",
        codec=Codec.from_env(),
        handlers=handlers,
        dead_letters=FakeDeadLetters(),
        retry=Backoff(attempts=2, first_delay_s=0.01),
        sleep=_no_sleep,
        observer=metrics,
    )


def _record(value: bytes | None) -> RawRecord:
    return RawRecord(topic="t", partition=0, offset=1, key=b"k", value=value)


async def test_every_dispatch_outcome_moves_its_counter_and_failures_carry_the_reason() -> None:
    metrics = Metrics("svc")
    codec = Codec.from_env()

    async def ok(_: Any) -> None:
        return None

    async def reject(_: Any) -> None:
        raise PermanentError("bad content")

    handled = _dispatcher(metrics, {AdapterTrained: ok})
    assert await handled.dispatch(_record(codec.encode(sample(AdapterTrained)))) is Outcome.handled
    assert await handled.dispatch(_record(codec.encode(sample(RevisionRegistered)))) == "ignored"
    assert await handled.dispatch(_record(b"garbage")) is Outcome.dead_lettered
    rejecting = _dispatcher(metrics, {AdapterTrained: reject})
    await rejecting.dispatch(_record(codec.encode(sample(AdapterTrained))))

    events = "adapters_events_total"
    assert _value(metrics, events, topic="t", event_type="AdapterTrained", outcome="handled") == 1
    assert (
        _value(metrics, events, topic="t", event_type="RevisionRegistered", outcome="ignored") == 1
    )
    assert (
        _value(metrics, events, topic="t", event_type="undecodable", outcome="dead_lettered") == 1
    )
    assert (
        _value(metrics, events, topic="t", event_type="AdapterTrained", outcome="dead_lettered")
        == 1
    )
    assert _value(metrics, "adapters_failures_total", reason="undecodable") == 1
    assert _value(metrics, "adapters_failures_total", reason="PermanentError") == 1
    count = "adapters_handler_seconds_count"
    assert _value(metrics, count, event_type="AdapterTrained") == 2, "handled and rejected"
    assert _value(metrics, count, event_type="RevisionRegistered") == 0, "ignored: not timed"


async def test_a_handler_that_keeps_failing_is_counted_once_under_its_exception_class() -> None:
    metrics = Metrics("svc")

    async def broken(_: Any) -> None:
        raise TimeoutError("database gone")

    dispatcher = _dispatcher(metrics, {AdapterTrained: broken})
    await dispatcher.dispatch(_record(Codec.from_env().encode(sample(AdapterTrained))))
    assert _value(metrics, "adapters_failures_total", reason="TimeoutError") == 1
    assert dispatcher.counts == {Outcome.dead_lettered: 1}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (None, "undecodable"),
        (CodecError("bad"), "undecodable"),
        (PermanentError("x"), "PermanentError"),
        (ValueError("x"), "ValueError"),
    ],
)
def test_failure_reasons_are_bounded_labels(error: BaseException | None, reason: str) -> None:
    assert failure_reason(error) == reason


@pytest.mark.parametrize(
    ("low", "high", "committed", "lag"),
    [
        (0, 10, 4, 6),
        (0, 10, 10, 0),
        (3, 10, -1001, 7),  # never committed: everything from the low watermark
        (0, 0, -1001, 0),
        (5, 10, 12, 0),  # a committed offset past a stale watermark is no negative lag
    ],
)
def test_consumer_lag_is_high_watermark_minus_committed_offset(
    low: int, high: int, committed: int, lag: int
) -> None:
    assert consumer_lag(low=low, high=high, committed=committed) == lag


def test_lag_relay_leadership_and_exposition_carry_the_service_label() -> None:
    metrics = Metrics("svc")
    leading = [False]
    metrics.follow_relay(lambda: leading[0])
    metrics.set_lag({("t", 0): 3, ("t", 1): 0})
    assert _value(metrics, "adapters_consumer_lag", topic="t", partition="0") == 3
    assert _value(metrics, "adapters_relay_leader") == 0
    leading[0] = True
    assert _value(metrics, "adapters_relay_leader") == 1
    text = metrics.exposition().decode()
    assert 'adapters_ready{service="svc"} 0.0' in text
    assert "adapters_events_total" in text or "adapters_events" in text


async def _fine() -> None:
    return None


async def _hang() -> None:
    await asyncio.sleep(10)


async def _refuse() -> None:
    raise ConnectionRefusedError("connection refused")


async def test_ready_only_when_handlers_are_built_and_every_probe_answers() -> None:
    metrics = Metrics("svc")
    built = [False]
    health = Health(metrics, built=lambda: built[0], probes={"postgres": _fine, "kafka": _fine})
    assert await health.failures() == {"handlers": "not built yet"}
    built[0] = True
    assert await health.failures() == {}
    assert _value(metrics, "adapters_ready") == 1


async def test_an_unreachable_dependency_fails_readiness_fast_with_the_reason() -> None:
    metrics = Metrics("svc")
    health = Health(
        metrics,
        built=lambda: True,
        probes={"postgres": _hang, "kafka": _refuse},
        timeout_s=0.05,
    )
    started = asyncio.get_running_loop().time()
    reasons = await health.failures()
    assert asyncio.get_running_loop().time() - started < 1
    assert reasons == {
        "postgres": "no answer within 0.05s",
        "kafka": "ConnectionRefusedError: connection refused",
    }
    assert _value(metrics, "adapters_ready") == 0


async def test_postgres_probe_runs_select_1_and_fails_before_the_registry_connects() -> None:
    class FakePool:
        queries: list[str] = []

        async def fetchval(self, query: str) -> int:
            self.queries.append(query)
            return 1

    pool: list[FakePool] = []
    probe = postgres_probe(lambda: pool[0] if pool else None)
    with pytest.raises(ConnectionError, match="registry not connected"):
        await probe()
    pool.append(FakePool())
    await probe()
    assert pool[0].queries == ["SELECT 1"]


class FakeAdmin:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def list_topics(self, timeout: float) -> None:
        self.calls += 1
        if self.down:
            raise KafkaException("all brokers down")


async def test_kafka_probe_caches_its_answer_good_or_bad() -> None:
    admin = FakeAdmin()
    probe = KafkaProbe("unused:9092", cache_s=60)
    probe._admin = admin
    await probe()
    await probe()
    assert admin.calls == 1, "cached"
    admin.down, probe.cache_s = True, 0
    with pytest.raises(ConnectionError, match="kafka unreachable"):
        await probe()
    probe.cache_s = 60
    with pytest.raises(ConnectionError):
        await probe()
    assert admin.calls == 2


async def test_endpoints_answer_live_ready_503_with_reasons_and_metrics_text() -> None:
    metrics = Metrics("svc")
    built = [False]
    health = Health(metrics, built=lambda: built[0], probes={"kafka": _fine})
    async with TestClient(TestServer(web_app(metrics, health))) as client:
        live = await client.get("/health/live")
        assert live.status == 200
        assert await live.json() == {"status": "live", "service": "svc"}
        not_ready = await client.get("/health/ready")
        assert not_ready.status == 503
        body = await not_ready.json()
        assert body["status"] == "not_ready"
        assert body["reasons"] == {"handlers": "not built yet"}
        built[0] = True
        assert (await client.get("/health/ready")).status == 200
        scrape = await client.get("/metrics")
        assert scrape.status == 200
        assert scrape.headers["Content-Type"].startswith("text/plain")
        assert 'adapters_ready{service="svc"} 1.0' in await scrape.text()


def test_the_grafana_dashboard_charts_every_pipeline_and_serving_metric() -> None:
    path = Path(__file__).parents[2] / "infra" / "grafana" / "adapters-dashboard.json"
    dashboard = json.loads(path.read_text())
    assert dashboard["schemaVersion"] >= 39
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for name in (
        "adapters_events_total",
        "adapters_failures_total",
        "adapters_handler_seconds_bucket",
        "adapters_consumer_lag",
        "adapters_relay_leader",
        "adapters_ready",
        "lora_requests_total",
        "lora_request_errors_total",
        "lora_request_duration_seconds_bucket",
        "base_request_errors_total",
    ):
        assert name in exprs, name
    lora_panels = [p for p in panels if "lora_request_errors_total" in str(p["targets"])]
    assert all("base_" not in str(p["targets"]) for p in lora_panels), "kept apart"
