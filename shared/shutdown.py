"""The deadline a process's shutdown keeps: after SIGTERM it exits within `grace_s`,
whatever its consumers, producers, pools or web servers still wait on (ADR 0025).

A clean stop commits offsets, flushes producers and closes pools, and each of those can
wait on a broker or a database that no longer answers: a network partition leaves no
error to see, only silence. Nothing unfinished is lost by exiting anyway: an event not
handled is redelivered to the next instance, the inboxes make a repeat a no-op, and an
outbox row not marked published is published again (ADR 0003, ADR 0008).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

DEFAULT_GRACE_S = 3.0


class ExitDeadline:
    """Armed once (the first signal); when it passes, flush the logs and exit at once."""

    def __init__(
        self, grace_s: float = DEFAULT_GRACE_S, *, exit: Callable[[int], object] = os._exit
    ) -> None:
        self.grace_s = grace_s
        self._exit = exit
        self._timer: threading.Timer | None = None

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def arm(self) -> None:
        if self._timer is not None:
            return
        self._timer = threading.Timer(self.grace_s, self._passed)
        self._timer.daemon = True  # never what keeps the process alive
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _passed(self) -> None:
        log.warning("shutdown_deadline_passed", grace_s=self.grace_s)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing to say
                stream.flush()
        self._exit(0)
