"""Every service exits promptly on SIGTERM whatever its dependencies' state (ADR 0025): real
service processes on the session's Kafka and PostgreSQL, each made to lose one of them (a
closed port, or PostgreSQL reached through a proxy that stops answering mid-run, as a
network partition does), then sent SIGTERM. The bound is a liveness check, not a benchmark.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import Infra
from tests.eventually import eventually
from tests.stack import Stack, answering, free_port

EXIT_WITHIN_S = 10.0


class PartitionableProxy:
    """A TCP forwarder to `target`; `partition()` makes it a black hole: connections stay
    open and nothing more passes either way, new ones are accepted and never answered."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.cut = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                self.sockets.append(client)
                if self.cut.is_set():
                    continue  # accepted, never answered
                upstream = socket.create_connection(self.target)
                self.sockets.append(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if self.cut.is_set():
                    continue  # swallowed: the far side hears nothing
                sink.sendall(data)
            if not self.cut.is_set():
                sink.shutdown(socket.SHUT_WR)  # a close passes, until the partition

    def connections(self) -> int:
        return len(self.sockets) // 2

    def partition(self) -> None:
        self.cut.set()

    def close(self) -> None:
        for s in [self.server, *self.sockets]:
            with contextlib.suppress(OSError):
                s.close()


def through(database_url: str, port: int) -> str:
    """`database_url` with its host and port replaced by the proxy's."""
    parts = urlsplit(database_url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("prompt-exit"))
    await stack.create()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def proxy(stack: Stack) -> Iterator[PartitionableProxy]:
    parts = urlsplit(stack.database_url)
    proxy = PartitionableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield proxy
    proxy.close()


def seconds_to_exit_after_sigterm(process: subprocess.Popen[bytes], log: Path) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"still running 60 s after SIGTERM:\n{log.read_text()[-4000:]}")
    return time.monotonic() - started


def ready(stack: Stack, name: str, process: subprocess.Popen[bytes], web_port: int) -> bool:
    """Its readiness check passes: the registry is connected and its handlers are built."""
    assert process.poll() is None, f"{name} exited early:\n{stack.log_of(name)}"
    return answering(f"http://127.0.0.1:{web_port}/health/ready")


SERVICES = ["validator", "activator", "approval", "archiver"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_whose_database_stops_answering_exits_promptly_on_sigterm(
    stack: Stack, proxy: PartitionableProxy, service: str
) -> None:
    name, web_port = f"{service}-partitioned", free_port()
    process = stack.command(
        name,
        ("-m", f"services.{service}"),
        DATABASE_URL=through(stack.database_url, proxy.port),
        ACTIVATOR_HTTP_PORT=str(free_port()),
        ARCHIVER_HTTP_PORT=str(free_port()),
        APPROVAL_HTTP_PORT=str(free_port()),
        WEB_PORT=str(web_port),
    ).start()
    stack.processes[name] = process
    eventually(lambda: ready(stack, name, process, web_port), timeout=90, message=f"{name} ready")
    time.sleep(1.0)  # the relay leads, timers tick
    proxy.partition()
    time.sleep(3.0)  # statements in flight now hang, as in a network partition

    took = seconds_to_exit_after_sigterm(process, stack.root / f"{name}.log")

    assert took < EXIT_WITHIN_S, f"{name} took {took:.1f} s:\n{stack.log_of(name)}"


def test_the_standalone_relay_whose_database_stops_answering_exits_promptly_on_sigterm(
    stack: Stack, proxy: PartitionableProxy
) -> None:
    name = "relay-partitioned"
    process = stack.command(
        name,
        ("-m", "shared.registry"),
        as_module="shared.registry",
        DATABASE_URL=through(stack.database_url, proxy.port),
    ).start()
    stack.processes[name] = process
    eventually(lambda: proxy.connections() >= 1, timeout=90, message=f"{name} connected")
    time.sleep(1.0)  # it leads: holding the lock, publishing, listening
    assert process.poll() is None, f"{name} exited early:\n{stack.log_of(name)}"
    proxy.partition()
    time.sleep(3.0)

    took = seconds_to_exit_after_sigterm(process, stack.root / f"{name}.log")

    assert took < EXIT_WITHIN_S, f"{name} took {took:.1f} s:\n{stack.log_of(name)}"


@pytest.mark.parametrize("service", ["validator", "activator"])
def test_a_service_whose_kafka_is_a_closed_port_exits_promptly_on_sigterm(
    stack: Stack, service: str
) -> None:
    name = f"{service}-no-kafka"
    process = stack.command(
        name,
        ("-m", f"services.{service}"),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        ACTIVATOR_HTTP_PORT=str(free_port()),
    ).start()
    stack.processes[name] = process
    # Past the imports: it is trying to reach Kafka (or already gave up and exited).
    eventually(
        lambda: "Starting..." in stack.log_of(name) or process.poll() is not None,
        timeout=90,
        message=f"{name} trying Kafka",
    )
    if process.poll() is not None:
        return  # it already gave up on its own: exited, which is what SIGTERM asks for
    took = seconds_to_exit_after_sigterm(process, stack.root / f"{name}.log")

    assert took < EXIT_WITHIN_S, f"{name} took {took:.1f} s:\n{stack.log_of(name)}"
