"""Waiting in adapterctl: for the activator's answer to a command, saying so every few
seconds, and `rollout status --watch` redrawing until the rollout ends. The clock, the
sleep, the fetch and the output are passed in, so tests run them on fakes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from adapterctl.output import moment
from adapterctl.rollout_view import ended, followed, status_lines, watched
from adapterctl.source import CliError

Answer = dict[str, Any]
CLEAR = "\x1b[H\x1b[2J"  # home, then erase the screen: a redraw in place
INTERRUPTED = 130  # what a shell reports for Ctrl-C


@dataclass(frozen=True, slots=True)
class Clock:
    """What waiting needs of time; tests pass a fake."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def poll_answer(base_url: str, command_id: str) -> Answer | None:
    """The activator's answer to the command, once; None while it has none (404) or
    cannot be reached."""
    url = f"{base_url.rstrip('/')}/outcomes/{command_id}"
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.TransportError:
        return None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise CliError(f"{url} answered {response.status_code}: {response.text[:200]}")
    answer: Answer = response.json()
    return answer


def wait_with_heartbeat(
    poll: Callable[[], Answer | None],
    command_id: str,
    timeout_s: float,
    say: Callable[[str], None],
    *,
    every_s: float = 5.0,
    poll_s: float = 0.2,
    clock: Clock = Clock(),
) -> Answer | None:
    """`poll` until it answers or `timeout_s` passes (None); every `every_s` without an
    answer, `say` how long it has been. Ctrl-C (KeyboardInterrupt) passes through."""
    started = clock.monotonic()
    next_beat = started + every_s
    while True:
        answer = poll()
        if answer is not None:
            return answer
        now = clock.monotonic()
        if now - started >= timeout_s:
            return None
        if now >= next_beat:
            say(f"waiting for the activator to take command {command_id}: {now - started:.0f} s")
            next_beat += every_s
        clock.sleep(poll_s)


def watch_status(
    fetch: Callable[[], Mapping[str, Any]],
    render: Callable[[Mapping[str, Any]], str],
    out: TextIO,
    *,
    interval_s: float,
    tty: bool,
    clock: Clock = Clock(),
    follow: tuple[str, str] | None = None,
) -> int:
    """Show the rollout every `interval_s` until each canary there at the start has ended:
    0 when every one was promoted, 1 when one was rolled back (or aborted, or replaced),
    130 on Ctrl-C. On a terminal it redraws; elsewhere it writes one line per change.
    `follow` (environment, revision): wait for that revision instead, from before its
    rollout begins until it is active (0) or gone again (1); see `followed`."""
    try:
        state = fetch()
        watching = watched(state)
        shown: dict[str, str] = {}
        seen = False
        while True:
            if tty:
                out.write(CLEAR + render(state) + "\n")
            else:
                for environment, line in status_lines(state).items():
                    if shown.get(environment) != line:
                        out.write(f"{moment(clock.now())} {line}\n")
                        shown[environment] = line
            out.flush()
            if follow is not None:
                environment, revision = follow
                result = followed(revision, environment, state, seen)
                seen = seen or any(
                    p["environment"] == environment and revision in (p["active"], p["canary"])
                    for p in state["pointers"]
                )
                if result is not None:
                    out.write(f"{revision[:19]}... {'active' if result == 0 else 'not active'}"
                              f" in {environment}\n")  # fmt: skip
                    return result
                clock.sleep(interval_s)
                state = fetch()
                continue
            result = ended(watching, state) if watching else 0
            if result is not None:
                verdict = "completed" if result == 0 else "rolled back"
                out.write(f"rollout {verdict}\n" if watching else "no canary in progress\n")
                return result
            clock.sleep(interval_s)
            state = fetch()
    except KeyboardInterrupt:
        return INTERRUPTED
