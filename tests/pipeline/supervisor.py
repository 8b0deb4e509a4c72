"""Service processes that come back when they die, as systemd or Kubernetes would bring
them back: each one's command and environment kept, every death and restart recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.conftest import REPO
from tests.stack import Stack


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    argv: tuple[str, ...]  # after `python`
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Death:
    name: str
    pid: int
    returncode: int
    killed: bool  # by the drill (SIGKILL on purpose), not on its own
    at: float


class Supervisor(threading.Thread):
    """Restarts any process of `stack` that exited while the drill runs."""

    def __init__(self, stack: Stack, specs: list[ServiceSpec], poll_s: float = 0.2) -> None:
        super().__init__(name="supervisor", daemon=True)
        self.stack = stack
        self.specs = {s.name: s for s in specs}
        self.poll_s = poll_s
        self.deaths: list[Death] = []
        self.killed: set[int] = set()
        self.buried: set[int] = set()  # pids whose death is recorded
        self.launched: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        for spec in specs:
            self._launch(spec)

    def _launch(self, spec: ServiceSpec) -> subprocess.Popen[bytes]:
        log = (self.stack.root / f"{spec.name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *spec.argv],
            cwd=REPO,
            env=self.stack.env(**spec.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.stack.processes[spec.name] = process
        self.launched[spec.name] = time.monotonic()
        return process

    def pid_of(self, name: str) -> int:
        return self.stack.processes[name].pid

    def name_of(self, pid: int) -> str | None:
        return next((n for n, p in self.stack.processes.items() if p.pid == pid), None)

    def kill(self, name: str) -> int:
        """SIGKILL the service's current process (a crash: no shutdown hooks); its pid."""
        with self.lock:
            process = self.stack.processes[name]
            self.killed.add(process.pid)
            os.kill(process.pid, signal.SIGKILL)
            return process.pid

    def wait_restarted(self, name: str, old_pid: int, timeout_s: float = 30) -> int:
        deadline = time.monotonic() + timeout_s
        while self.stack.processes[name].pid == old_pid:
            assert time.monotonic() < deadline, f"{name} was not restarted"
            time.sleep(0.05)
        return self.stack.processes[name].pid

    def unexpected_deaths(self) -> list[Death]:
        return [d for d in self.deaths if not d.killed]

    def run(self) -> None:
        while not self.stopping.wait(self.poll_s):
            with self.lock:
                for name, process in list(self.stack.processes.items()):
                    code = process.poll()
                    if code is None or self.stopping.is_set():
                        continue
                    killed = process.pid in self.killed
                    if process.pid not in self.buried:
                        self.buried.add(process.pid)
                        self.deaths.append(Death(name, process.pid, code, killed, time.monotonic()))
                        if not killed:
                            print(
                                f"[supervisor] {name} (pid {process.pid}) died on its own: {code}"
                            )
                    # One that dies on its own right after starting is started again at most
                    # once a second (systemd's RestartSec), not in a tight loop.
                    if killed or time.monotonic() - self.launched[name] >= 1.0:
                        self._launch(self.specs[name])

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.stack.stop()
