"""Fault injection: end the process abruptly right after a named step, as a crash would."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

# In pipeline order: each is the last thing done before the crash.
CRASH_POINTS = ("expired", "archived", "verified", "recorded", "deleted")
CRASH_EXIT = 86

Crash = Callable[[str], None]


def no_crash(step: str) -> None:
    """The production hook: every step continues."""


def crash_after(point: str) -> Crash:
    """A hook that kills the process (no cleanup, no flush of anything but our log) at `point`."""
    if not point:
        return no_crash

    def crash(step: str) -> None:
        if step == point:
            log.warning("crash_injected", after=step)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(CRASH_EXIT)

    return crash
