"""Service processes for the demo, the tests and the fault drills: each one started with
its environment and log file, waited for until it answers, stopped gracefully (SIGTERM,
then SIGKILL) and started again by whoever supervises it. Nothing here knows the services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import tenacity

REPO = Path(__file__).resolve().parents[1]
STOP_GRACE_S = 30.0  # faust commits offsets and closes its consumers within this


@dataclass(frozen=True, slots=True)
class ServiceCommand:
    """How to start one service: `python <argv>` in `cwd` with `env`, output to `log`.

    `new_session`: the process leads its own session, so a Ctrl-C in the terminal reaches
    the launcher alone, which then stops every service in order.
    """

    name: str
    argv: Sequence[str]  # after `python`
    env: Mapping[str, str]
    log: Path
    cwd: Path = REPO
    new_session: bool = False

    def start(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            return subprocess.Popen(
                [sys.executable, *self.argv],
                cwd=self.cwd,
                env=dict(self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=self.new_session,
            )


@dataclass
class Restarts:
    """When each service was last started: one that dies on its own right after starting is
    started again at most once per `min_interval_s` (systemd's RestartSec), not in a loop."""

    min_interval_s: float = 1.0
    started: dict[str, float] = field(default_factory=dict)

    def start(self, command: ServiceCommand) -> subprocess.Popen[bytes]:
        self.started[command.name] = time.monotonic()
        return command.start()

    def due(self, name: str) -> bool:
        return time.monotonic() - self.started.get(name, 0.0) >= self.min_interval_s


def stop(processes: Iterable[subprocess.Popen[bytes]], *, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every live process at once, then SIGKILL whichever outlives `grace_s`."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL (a crash: no shutdown hooks run); the pid it had."""
    os.kill(process.pid, signal.SIGKILL)
    return process.pid


def wait_http(
    url: str, *, timeout_s: float = 180, check: Callable[[], None] = lambda: None
) -> None:
    """Until `url` answers 200; `check` raises when a process it waits on has died.
    TimeoutError after `timeout_s`."""

    def answered() -> bool:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        check()
        return False

    def timed_out(_: tenacity.RetryCallState) -> None:
        raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f}s")

    tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout_s),
        wait=tenacity.wait_fixed(0.3),
        retry=tenacity.retry_if_result(lambda ok: not ok),
        retry_error_callback=timed_out,
    )(answered)
