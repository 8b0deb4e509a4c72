"""Service processes that come back when they die, as systemd or Kubernetes would bring
them back: each one's command and environment kept, every death and restart recorded."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from infra import processes
from infra.processes import Restarts
from tests.eventually import eventually
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
        self.restarts = Restarts()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        for spec in specs:
            self._launch(spec)

    def _launch(self, spec: ServiceSpec) -> subprocess.Popen[bytes]:
        process = self.restarts.start(self.stack.command(spec.name, spec.argv, **spec.env))
        self.stack.processes[spec.name] = process
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
            return processes.kill(process)

    def wait_restarted(self, name: str, old_pid: int, timeout_s: float = 30) -> int:
        def restarted() -> int | None:
            pid = self.stack.processes[name].pid
            return pid if pid != old_pid else None

        return eventually(restarted, timeout=timeout_s, interval=0.05, message=f"{name} restarted")

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
                    if killed or self.restarts.due(name):
                        self._launch(self.specs[name])

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.stack.stop()
