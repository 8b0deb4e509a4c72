"""Per-process Prometheus metrics and health for every service, served on `web_port`.

`Metrics` is the dispatcher's observer; `Health` answers readiness from the handlers'
state and short, bounded probes of PostgreSQL and Kafka; `serve` exposes
`/health/live`, `/health/ready` and `/metrics` on a small aiohttp server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import structlog
from aiohttp import web
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shared.codec import CodecError
from shared.kafka.auth import Kafka, client_config
from shared.kafka.dispatch import Outcome, RawRecord
from shared.kafka.topics import admin_client

log = structlog.get_logger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def failure_reason(error: BaseException | None) -> str:
    """A bounded label: "undecodable" for bytes we cannot read, else the exception class."""
    if error is None or isinstance(error, CodecError):
        return "undecodable"
    return type(error).__name__


def consumer_lag(*, low: int, high: int, committed: int) -> int:
    """Records not yet committed by the group; a group that never committed starts at `low`."""
    position = committed if committed >= 0 else low
    return max(0, high - position)


class Metrics:
    """One registry per process, so a scrape shows this service and nothing else."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "adapters_events",
            "records dispatched, by outcome",
            ("service", "topic", "event_type", "outcome"),
            registry=r,
        )
        self.failures = Counter(
            "adapters_failures",
            "records dead-lettered, by reason",
            ("service", "reason"),
            registry=r,
        )
        self.handler_seconds = Histogram(
            "adapters_handler_seconds",
            "time from first handler call to outcome, retries included",
            ("service", "event_type"),
            buckets=BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "adapters_consumer_lag",
            "high watermark minus the group's committed offset",
            ("service", "topic", "partition"),
            registry=r,
        )
        self.relay_leader = Gauge(
            "adapters_relay_leader",
            "1 while this process leads the relay",
            ("service",),
            registry=r,
        )
        self.ready = Gauge(
            "adapters_ready", "1 when the last readiness check passed", ("service",), registry=r
        )
        self.integrity_violations = Counter(
            "adapters_integrity_violations",
            "revisions quarantined because stored bytes no longer hash to their manifest "
            "(alert on any increase)",
            ("service", "detected_by"),
            registry=r,
        )
        self.scrub_bytes = Counter(
            "adapters_scrub_bytes",
            "stored bytes re-hashed by the scrubber",
            ("service",),
            registry=r,
        )
        self.scrub_progress = Gauge(
            "adapters_scrub_pass_progress",
            "share of the current scrub pass done (0 to 1); a pass re-hashes every revision",
            ("service",),
            registry=r,
        )
        self.scrub_passes = Counter(
            "adapters_scrub_passes",
            "complete scrub passes over the store",
            ("service",),
            registry=r,
        )
        self.relay_leader.labels(service).set(0)
        self.ready.labels(service).set(0)

    def observe(
        self,
        record: RawRecord,
        *,
        event_type: str,
        outcome: Outcome,
        seconds: float | None,
        error: BaseException | None,
    ) -> None:
        self.events.labels(self.service, record.topic, event_type, outcome.value).inc()
        if seconds is not None:
            self.handler_seconds.labels(self.service, event_type).observe(seconds)
        if outcome is Outcome.dead_lettered:
            self.failures.labels(self.service, failure_reason(error)).inc()

    def follow_relay(self, is_leader: Callable[[], bool]) -> None:
        self.relay_leader.labels(self.service).set_function(lambda: float(is_leader()))

    def set_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), lag in lags.items():
            self.lag.labels(self.service, topic, str(partition)).set(lag)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


Probe = Callable[[], Awaitable[None]]  # raises when the dependency is not usable


class Health:
    """Readiness: handlers built and every probe answering within `timeout_s`."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        built: Callable[[], bool],
        probes: Mapping[str, Probe],
        timeout_s: float = 2.0,
    ) -> None:
        self.metrics, self.built, self.probes, self.timeout_s = metrics, built, probes, timeout_s

    async def _reason(self, probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(probe(), self.timeout_s)
        except TimeoutError:
            return f"no answer within {self.timeout_s}s"
        except Exception as exc:  # a probe's failure is the answer, not a crash
            return f"{type(exc).__name__}: {exc}"
        return None

    async def failures(self) -> dict[str, str]:
        """Why this process is not ready, by check; empty when it is."""
        names = list(self.probes)
        found = await asyncio.gather(*(self._reason(self.probes[n]) for n in names))
        reasons = {n: r for n, r in zip(names, found, strict=True) if r is not None}
        if not self.built():
            reasons["handlers"] = "not built yet"
        self.metrics.ready.labels(self.metrics.service).set(0 if reasons else 1)
        return reasons


def postgres_probe(pool: Callable[[], Any]) -> Probe:
    """`SELECT 1` through the registry's pool (None until the registry is connected)."""

    async def probe() -> None:
        current = pool()
        if current is None:
            raise ConnectionError("registry not connected")
        await current.fetchval("SELECT 1")

    return probe


class KafkaProbe:
    """An admin metadata call, its answer (good or bad) cached for `cache_s`."""

    def __init__(self, kafka: Kafka, *, timeout_s: float = 1.5, cache_s: float = 5.0):
        self.kafka, self.timeout_s, self.cache_s = kafka, timeout_s, cache_s
        self._admin: Any = None
        self._checked_at = -float("inf")
        self._error: str | None = None
        self._lock = asyncio.Lock()

    def _metadata(self) -> None:
        if self._admin is None:
            self._admin = admin_client(self.kafka)
        self._admin.list_topics(timeout=self.timeout_s)

    async def __call__(self) -> None:
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.cache_s:
                try:
                    await asyncio.to_thread(self._metadata)
                    self._error = None
                except KafkaException as exc:
                    self._error = f"kafka unreachable: {exc}"
                self._checked_at = time.monotonic()
        if self._error is not None:
            raise ConnectionError(self._error)


class LagReader:
    """The group's committed offsets against the brokers' watermarks (blocking calls)."""

    def __init__(self, kafka: Kafka, group: str, topics: Iterable[str]) -> None:
        self.topics = list(topics)
        self._consumer = Consumer(
            client_config(kafka, **{"group.id": group, "enable.auto.commit": False})
        )

    def read(self, timeout_s: float = 2.0) -> dict[tuple[str, int], int]:
        metadata = self._consumer.list_topics(timeout=timeout_s)
        partitions = [
            TopicPartition(t, p)
            for t in self.topics
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        lags: dict[tuple[str, int], int] = {}
        for tp in self._consumer.committed(partitions, timeout=timeout_s):
            low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
            lags[(tp.topic, tp.partition)] = consumer_lag(low=low, high=high, committed=tp.offset)
        return lags

    def close(self) -> None:
        self._consumer.close()


async def watch(
    metrics: Metrics, health: Health, reader: LagReader, *, interval_s: float = 5.0
) -> None:
    """Refresh consumer lag and readiness every `interval_s`, between scrapes, until cancelled."""
    try:
        while True:
            await health.failures()
            try:
                metrics.set_lag(await asyncio.to_thread(reader.read))
            except KafkaException as exc:
                log.warning("consumer_lag_unavailable", error=str(exc))
            await asyncio.sleep(interval_s)
    finally:
        await asyncio.to_thread(reader.close)


def web_app(metrics: Metrics, health: Health) -> web.Application:
    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "live", "service": metrics.service})

    async def ready(_: web.Request) -> web.Response:
        reasons = await health.failures()
        status = "not_ready" if reasons else "ready"
        body = {"status": status, "service": metrics.service, "reasons": reasons}
        return web.json_response(body, status=503 if reasons else 200)

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", scrape)
    return app


async def serve(host: str, port: int, metrics: Metrics, health: Health) -> web.AppRunner:
    """Start the health and metrics server; the caller cleans the runner up."""
    runner = web.AppRunner(web_app(metrics, health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("observability_serving", host=host, port=port)
    return runner
