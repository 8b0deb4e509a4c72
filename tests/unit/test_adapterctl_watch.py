"""adapterctl's waiting, on a fake clock: a heartbeat while the activator has not taken a
command, the truth about a queued command when the wait is interrupted, and `rollout status
--watch` redrawing (or writing one line per change) until the rollout ends."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapterctl import rollout
from adapterctl.main import build_parser
from adapterctl.watch import CLEAR, Clock, wait_with_heartbeat, watch_status
from shared.settings import KernelSettings

CANARY, STABLE = "sha256:" + "c" * 64, "sha256:" + "a" * 64


class FakeTime:
    """A clock whose sleep moves it on; `interrupt_at` raises Ctrl-C in the sleep then."""

    def __init__(self, interrupt_at: float | None = None) -> None:
        self.t = 0.0
        self.slept: list[float] = []
        self.interrupt_at = interrupt_at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        if self.interrupt_at is not None and self.t >= self.interrupt_at:
            raise KeyboardInterrupt

    def clock(self) -> Clock:
        start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        return Clock(lambda: self.t, self.sleep, lambda: start + timedelta(seconds=self.t))


def test_a_heartbeat_says_how_long_the_command_has_waited_every_few_seconds() -> None:
    time = FakeTime()
    said: list[str] = []

    def poll() -> dict[str, Any] | None:
        return {"outcome": "committed"} if time.t >= 12 else None

    answer = wait_with_heartbeat(poll, "cmd-1", 60, said.append, every_s=5, clock=time.clock())

    assert answer == {"outcome": "committed"}
    assert said == [
        "waiting for the activator to take command cmd-1: 5 s",
        "waiting for the activator to take command cmd-1: 10 s",
    ]


def test_no_answer_within_the_wait_is_none() -> None:
    time = FakeTime()
    said: list[str] = []
    assert wait_with_heartbeat(lambda: None, "c", 3, said.append, clock=time.clock()) is None
    assert said == []  # under the first beat


def test_ctrl_c_while_a_command_is_queued_says_it_is_not_cancelled_and_how_to_undo_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(url: str, command_id: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rollout, "with_registry", lambda source, read: {"adapter": "chat"})
    monkeypatch.setattr(rollout, "issue", lambda url, body, token: "cmd-7")
    monkeypatch.setattr(rollout, "poll_answer", interrupted)
    parser = build_parser(KernelSettings.from_env("adapterctl", {}))
    args = parser.parse_args(["expand", "chat", "--environment", "prod", "--percent", "50"])

    assert args.run(args, None) == 130

    err = capsys.readouterr().err
    assert "command cmd-7 is not cancelled: it stays queued on" in err
    assert "/outcomes/cmd-7" in err
    assert "`adapterctl abort chat --environment prod`" in err


def states(*pointers: tuple[str | None, int, str]) -> Iterator[dict[str, Any]]:
    """`rollout status` states of prod, one per fetch: (canary, share, active)."""
    for canary, percent, active in pointers:
        yield {
            "pointers": [
                {
                    "environment": "prod",
                    "active": active,
                    "canary": canary,
                    "canary_percent": percent,
                    "rollback_target": None,
                }
            ],
            "canaries": [],
            "outcomes": [],
        }


def watch(
    fetched: Iterator[dict[str, Any]],
    *,
    tty: bool,
    time: FakeTime,
    follow: tuple[str, str] | None = None,
) -> tuple[int, str]:
    out = io.StringIO()
    code = watch_status(
        lambda: next(fetched),
        lambda state: f"page {state['pointers'][0]['canary_percent']}%",
        out,
        interval_s=2,
        tty=tty,
        clock=time.clock(),
        follow=follow,
    )
    return code, out.getvalue()


def test_watching_off_a_terminal_writes_one_line_per_change_and_exits_0_when_promoted() -> None:
    time = FakeTime()
    fetched = states(
        (CANARY, 10, STABLE), (CANARY, 10, STABLE), (CANARY, 50, STABLE), (None, 0, CANARY)
    )

    code, out = watch(fetched, tty=False, time=time)

    assert code == 0
    assert out.splitlines() == [
        "2026-12-01T12:00:00Z prod: active aaaaaaaaaaaa, canary cccccccccccc at 10%: "
        "not judged yet (-)",
        "2026-12-01T12:00:04Z prod: active aaaaaaaaaaaa, canary cccccccccccc at 50%: "
        "not judged yet (-)",
        "2026-12-01T12:00:06Z prod: active cccccccccccc",
        "rollout completed",
    ]
    assert time.slept == [2, 2, 2]


def test_watching_on_a_terminal_redraws_and_exits_1_when_rolled_back() -> None:
    code, out = watch(states((CANARY, 10, STABLE), (None, 0, STABLE)), tty=True, time=FakeTime())

    assert code == 1
    assert out == f"{CLEAR}page 10%\n{CLEAR}page 0%\nrollout rolled back\n"


def test_ctrl_c_stops_watching_with_130() -> None:
    fetched = states(*[(CANARY, 10, STABLE)] * 10)
    assert watch(fetched, tty=False, time=FakeTime(interrupt_at=4))[0] == 130


def test_watching_with_no_canary_shows_the_status_once_and_exits_0() -> None:
    code, out = watch(states((None, 0, STABLE)), tty=False, time=FakeTime())
    assert (code, out.splitlines()[-1]) == (0, "no canary in progress")


@pytest.mark.parametrize(
    ("pointers", "code"),
    [
        # approved, not rolled out yet; then canaries; then active: 0
        ([(None, 0, STABLE), (None, 0, STABLE), (CANARY, 20, STABLE), (None, 0, CANARY)], 0),
        # the first revision of an adapter: nothing serves, then it is active at once
        ([(None, 0, ""), (None, 0, CANARY)], 0),
        # canaried, then rolled back: the stable one serves again
        ([(None, 0, STABLE), (CANARY, 20, STABLE), (None, 0, STABLE)], 1),
    ],
)
def test_following_a_revision_waits_for_its_rollout_to_begin_and_end(
    pointers: list[tuple[str | None, int, str]], code: int
) -> None:
    result, out = watch(states(*pointers), tty=False, time=FakeTime(), follow=("prod", CANARY))
    assert result == code
    assert out.splitlines()[-1].endswith("active in prod" if code == 0 else "not active in prod")
