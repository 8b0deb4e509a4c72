"""The exit deadline a service's shutdown keeps after SIGTERM (ADR 0025)."""

from __future__ import annotations

import threading

from shared.shutdown import ExitDeadline


def test_the_process_exits_once_the_deadline_passes_after_the_first_signal() -> None:
    exited = threading.Event()
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    deadline = ExitDeadline(0.05, exit=fake_exit)
    assert not deadline.armed
    deadline.arm()
    deadline.arm()  # a second signal changes nothing
    assert exited.wait(5)
    assert codes == [0]


def test_a_deadline_never_armed_never_exits_the_process() -> None:
    codes: list[int] = []
    deadline = ExitDeadline(0.01, exit=codes.append)
    threading.Event().wait(0.1)
    assert codes == [] and not deadline.armed


def test_a_disarmed_deadline_does_not_exit() -> None:
    codes: list[int] = []
    deadline = ExitDeadline(0.2, exit=codes.append)
    deadline.arm()
    deadline.disarm()
    threading.Event().wait(0.4)
    assert codes == []
