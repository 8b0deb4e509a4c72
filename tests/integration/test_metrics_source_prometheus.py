"""Canary analysis reads a real Prometheus server (Debian's, started by infra/prometheus/):
the test serves gateway-format counters it controls, names them in a file_sd file under the
environment's label, and the Prometheus source's snapshot follows them, restarts included;
a server that is down makes the source raise the unreachable error."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from services.activator.canary import tick
from services.activator.metrics import GATEWAY, Counters, parse_metrics, window
from services.activator.metrics_sources import PrometheusMetrics
from services.activator.ports import MetricsUnavailable
from services.activator.routing import lora_name
from shared.events import CanaryExpanded, RevisionRolledBack
from tests.conftest import INFRA_ENV, REPO, _read_env_file
from tests.unit.test_activator_handlers import ADAPTER, Rollout

START = REPO / "infra" / "prometheus" / "start.sh"
STOP = REPO / "infra" / "prometheus" / "stop.sh"
LABELS = ("model_name", "target_model_name")


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class Prometheus:
    url: str
    targets: Path  # its file_sd folder


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Prometheus]:
    """The Prometheus infra/up.sh started, or one this module starts (and then stops)."""
    values = {**(_read_env_file(INFRA_ENV) if INFRA_ENV.exists() else {}), **os.environ}
    url = values.get("PROMETHEUS_URL", "http://127.0.0.1:19090")
    targets = Path(values.get("PROMETHEUS_TARGETS_DIR", REPO / "var" / "prometheus" / "targets"))
    if ready(url):
        yield Prometheus(url, targets)
        return
    subprocess.run([str(START)], check=True, cwd=REPO)
    try:
        yield Prometheus("http://127.0.0.1:19090", REPO / "var" / "prometheus" / "targets")
    finally:
        subprocess.run([str(STOP)], check=False, cwd=REPO)


@dataclass
class Exporter:
    """A tiny HTTP server exporting gateway-format metrics from a registry the test holds;
    `restart()` swaps in a fresh one, as a restarted gateway's counters start from zero."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    port: int = 0

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("inference_model_request_total", "", LABELS, registry=self.registry)
        self.errors = Counter(
            "inference_model_request_error_total",
            "",
            (*LABELS, "error_code"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "inference_model_request_duration_seconds",
            "",
            LABELS,
            buckets=(0.05, 0.5, 5.0),
            registry=self.registry,
        )

    def serve(self, target: str, requests: int, *, errors: int = 0, seconds: float = 0.01) -> None:
        model = target.split("@")[0]
        for n in range(requests):
            self.requests.labels(model, target).inc()
            self.duration.labels(model, target).observe(seconds)
            if n < errors:
                self.errors.labels(model, target, "503").inc()

    def counters(self) -> dict[str, Counters]:
        return parse_metrics(generate_latest(self.registry).decode(), GATEWAY)


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exported = Exporter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(exported.registry)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    exported.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield exported
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def scrape(prometheus: Prometheus) -> Iterator[Callable[[str, int], None]]:
    """`scrape(environment, port)`: Prometheus scrapes 127.0.0.1:port as that environment's
    gateway, through a file_sd file of this test's own (removed afterwards)."""
    written: list[Path] = []

    def add(environment: str, port: int) -> None:
        prometheus.targets.mkdir(parents=True, exist_ok=True)
        path = prometheus.targets / f"{environment}-{port}.json"
        group = [{"targets": [f"127.0.0.1:{port}"], "labels": {"environment": environment}}]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(group))
        tmp.replace(path)  # whole: Prometheus never reads half a file
        written.append(path)

    yield add
    for path in written:
        path.unlink(missing_ok=True)


async def eventually(
    read: Callable[[], Awaitable[Any]], wanted: Any, timeout_s: float = 30.0
) -> Any:
    """Read until `read()` equals `wanted` (Prometheus scrapes every second); the last read."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        got = await read()
        if got == wanted or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.25)


async def test_the_prometheus_snapshot_equals_the_gateways_counters_and_moves_with_them(
    prometheus: Prometheus,
    exporter: Exporter,
    scrape: Callable[[str, int], None],
    unique: Callable[[str], str],
) -> None:
    environment, other = unique("staging"), unique("production")
    canary, stable = "adapter@00000000000000c1", "adapter@00000000000000a1"
    exporter.serve(stable, 40, seconds=0.02)
    exporter.serve(canary, 10, errors=2, seconds=1.0)
    scrape(environment, exporter.port)
    scrape(other, exporter.port)  # the same series under another environment: not counted
    origin = f"{prometheus.url}#127.0.0.1:{exporter.port}"
    async with httpx.AsyncClient(timeout=5) as client:
        source = PrometheusMetrics(prometheus.url, client)

        first = await eventually(
            lambda: source.snapshot(environment), {origin: exporter.counters()}
        )
        assert first == {origin: exporter.counters()}
        assert first[origin][canary].requests == 10 and first[origin][canary].errors == 2

        exporter.serve(canary, 5, errors=1)
        moved = await eventually(
            lambda: source.snapshot(environment), {origin: exporter.counters()}
        )
        assert moved == {origin: exporter.counters()}
        assert window(moved, first)[canary].requests == 5
        assert window(moved, first)[canary].errors == 1

        exporter.restart()  # the gateway restarted: its counters went down
        exporter.serve(canary, 3)
        after = await eventually(
            lambda: source.snapshot(environment), {origin: exporter.counters()}
        )
        assert after[origin][canary].requests == 3
        assert window(after, moved)[canary].requests == 3  # counted from zero, as a restart


def free_port() -> int:
    """A port below the ephemeral range (32768+) that nothing listens on."""
    for port in range(29000 + os.getpid() % 1000, 31000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


async def test_a_prometheus_that_is_down_makes_the_source_raise_unreachable(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "VAR_DIR": str(tmp_path / "var"), "PROMETHEUS_PORT": str(free_port())}
    subprocess.run([str(START)], check=True, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
    async with httpx.AsyncClient(timeout=5) as client:
        source = PrometheusMetrics(url, client)
        try:
            assert await source.snapshot("nowhere") == {}  # up: an empty answer is no error
        finally:
            subprocess.run([str(STOP)], check=True, cwd=REPO, env=env)

        with pytest.raises(MetricsUnavailable) as raised:
            await source.snapshot("nowhere")
    assert raised.value.unreachable
    assert url in raised.value.url


class UnderLabel:
    """The Prometheus source, asked for this test's own `environment` label whatever the
    environment is called (the shared server may hold other tests' series)."""

    def __init__(self, source: PrometheusMetrics, label: str) -> None:
        self.source, self.label = source, label

    async def snapshot(self, environment: str) -> dict[str, dict[str, Counters]]:
        return await self.source.snapshot(self.label)


async def test_a_canary_judged_from_prometheus_expands_then_rolls_back_on_its_errors(
    prometheus: Prometheus,
    exporter: Exporter,
    scrape: Callable[[str, int], None],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    label = unique("prod")
    rollout = Rollout(tmp_path, analysis={"min_samples": 20, "step_interval_s": 0})
    async with httpx.AsyncClient(timeout=5) as client:
        source = UnderLabel(PrometheusMetrics(prometheus.url, client), label)
        rollout.world.deps.fleet.metrics = source
        stable = lora_name(ADAPTER, await rollout.active(b"one"))
        exporter.serve(stable, 30)
        scrape(label, exporter.port)
        origin = f"{prometheus.url}#127.0.0.1:{exporter.port}"

        def seen() -> Awaitable[Any]:
            return source.snapshot(label)

        await eventually(seen, {origin: exporter.counters()})  # scraped before the step
        revision = await rollout.canary(b"two")  # its step's baseline: from Prometheus
        canary = lora_name(ADAPTER, revision)
        exporter.serve(canary, 25)
        assert await eventually(seen, {origin: exporter.counters()}) == {
            origin: exporter.counters()
        }
        await tick(rollout.world.deps)
        [expanded] = await rollout.since_mark()
        assert isinstance(expanded, CanaryExpanded)

        exporter.serve(canary, 25, errors=25)  # the next step: every request fails
        await eventually(seen, {origin: exporter.counters()})
        await tick(rollout.world.deps)
        events = await rollout.since_mark()
        assert any(isinstance(e, RevisionRolledBack) for e in events), events
        assert (await rollout.pointer()).canary is None
