"""Ctrl-C during `make demo` stops every service it started and nothing else: the shared
Kafka and PostgreSQL it found running stay up, and a re-run starts clean.

The demo is held at its `canary` pause point (`DEMO_PAUSE_AT`, test-only) while the
Ctrl-C is sent: mid-journey, with traffic flowing, however slow the machine. A demo that
ran on would otherwise finish first on a loaded machine and exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import REPO, Infra, _reachable
from tests.eventually import eventually

PIDS = REPO / "var" / "demo" / "processes.txt"


class DemoExited(Exception):
    """The demo ended before its pause point: nothing to interrupt."""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_ctrl_c_stops_every_demo_service_and_leaves_the_shared_infra(infra: Infra) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(REPO / "infra" / "demo.py")],
        cwd=REPO,
        env={**infra.env(), "DEMO_PAUSE_AT": "canary"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda out=demo.stdout: lines.extend(iter(out.readline, "")))
    reader.start()
    try:

        def paused() -> bool:
            if demo.poll() is not None:
                raise DemoExited("".join(lines)[-6000:])
            return any("paused at canary" in line for line in lines)

        eventually(paused, timeout=600, interval=0.5, message="the demo paused at the canary")
        started = {int(line.split()[0]): line.split()[1] for line in PIDS.read_text().splitlines()}
        assert len(started) == 9, started  # six services, two serving replicas and a gateway
        assert all(alive(pid) for pid in started), started

        os.kill(demo.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        assert demo.wait(timeout=90) == 130, "".join(lines)[-6000:]
    finally:
        if demo.poll() is None:
            demo.kill()
        reader.join(timeout=10)
    output = "".join(lines)
    left = {pid: name for pid, name in started.items() if alive(pid)}
    assert not left, f"still running after Ctrl-C: {left}\n{output[-4000:]}"
    assert "nothing of the demo is left running" in output, output[-4000:]
    assert "were running before the demo: left running" in output, output[-4000:]
    assert not PIDS.exists()
    # Prometheus no longer scrapes what the demo ran (its file_sd file is gone).
    assert not (REPO / "var" / "prometheus" / "targets" / "demo.json").exists()
    assert _reachable(infra), "the demo stopped Kafka or PostgreSQL it did not start"
