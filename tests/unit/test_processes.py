"""The one launcher: a service starts with its environment and log, stops on SIGTERM or
is killed past the grace period, and a wait for its HTTP endpoint gives up when told."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from infra import processes
from infra.processes import Restarts, ServiceCommand
from tests.eventually import eventually

IGNORES_SIGTERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def command(tmp_path: Path, code: str, **env: str) -> ServiceCommand:
    return ServiceCommand("svc", ("-c", code), env, tmp_path / "logs" / "svc.log")


def test_a_service_runs_with_its_environment_and_writes_its_log(tmp_path: Path) -> None:
    process = command(tmp_path, "import os; print(os.environ['GREETING'])", GREETING="hi").start()
    assert process.wait(timeout=30) == 0
    assert (tmp_path / "logs" / "svc.log").read_text() == "hi\n"


def test_stop_sends_sigterm_and_waits(tmp_path: Path) -> None:
    process = command(tmp_path, "import time; time.sleep(60)").start()
    processes.stop([process], grace_s=30)
    assert process.returncode == -signal.SIGTERM


def test_stop_kills_a_process_that_outlives_the_grace_period(tmp_path: Path) -> None:
    process = command(tmp_path, IGNORES_SIGTERM).start()
    log = tmp_path / "logs" / "svc.log"
    eventually(lambda: "up" in log.read_text(), timeout=30, message="its handler installed")
    started = time.monotonic()
    processes.stop([process], grace_s=0.5)
    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_restarts_are_due_at_most_once_per_interval(tmp_path: Path) -> None:
    restarts = Restarts(min_interval_s=60)
    process = restarts.start(command(tmp_path, "pass"))
    process.wait(timeout=30)
    assert not restarts.due("svc")
    assert Restarts(min_interval_s=0).due("svc")


def test_waiting_for_http_stops_when_the_check_says_the_process_died() -> None:
    def dead() -> None:
        raise ProcessLookupError("the service exited")

    with pytest.raises(ProcessLookupError):
        processes.wait_http("http://127.0.0.1:9/health", timeout_s=30, check=dead)


def test_waiting_for_http_times_out() -> None:
    with pytest.raises(TimeoutError, match="did not answer 200 within"):
        processes.wait_http("http://127.0.0.1:9/health", timeout_s=0.5)


def test_kill_is_a_crash(tmp_path: Path) -> None:
    process = command(tmp_path, "import time; time.sleep(60)").start()
    assert processes.kill(process) == process.pid
    assert process.wait(timeout=30) == -signal.SIGKILL
