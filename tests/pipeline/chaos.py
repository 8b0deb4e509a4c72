"""SIGKILL the pipeline's services at random moments, from a seeded schedule that a failure
prints so it can be replayed: `FAULTS_SEED=<seed> pytest tests/faults/...` (the moments are
shares of each target's own work, so a replay strikes at the same points of the run)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from shared.registry.relay import LEADER_LOCK
from tests.eventually import eventually_async
from tests.pipeline.driver import Pipeline
from tests.pipeline.outcomes import PATHS, Expected, Seen

RELAY_LEADER = "relay-leader"  # whichever process holds the relay's advisory lock now
REFERENCE_SERVER = "reference_server"  # one of the two replicas, chosen by the schedule
KINDS = (
    "ingest",
    "validator",
    "gpu_evaluator",
    "approval",
    "activator",
    REFERENCE_SERVER,
    RELAY_LEADER,
)


# Whose work a kill must land in: the events a target's progress is counted by (the relay
# leader's by every event). Upstream services finish long before the activator does, so a
# kill timed by overall progress would mostly find them idle.
STAGES: Mapping[str, frozenset[str]] = {
    "ingest": frozenset({"RevisionRegistered"}),
    "validator": frozenset({"RevisionValidated", "RevisionRejected"}),
    "gpu_evaluator": frozenset({"RevisionEvaluated"}),
    "approval": frozenset({"RevisionApproved"}),
    "activator": frozenset({"RevisionActivated"}),
    "replica1": frozenset({"RevisionActivated"}),
    "replica2": frozenset({"RevisionActivated"}),
}


@dataclass(frozen=True, slots=True)
class Kill:
    at: float  # the share of the target's work done when it strikes
    delay_s: float  # then this much later
    target: str  # a service name, or RELAY_LEADER

    def __str__(self) -> str:
        return f"at {self.at:4.0%} of its work +{self.delay_s:.2f}s: {self.target}"


@dataclass(frozen=True, slots=True)
class Performed:
    kill: Kill
    service: str
    pid: int
    at_s: float  # since the submissions
    done: int  # promotions finished by then

    def __str__(self) -> str:
        leader = " (the relay leader)" if self.kill.target == RELAY_LEADER else ""
        return (
            f"t+{self.at_s:6.1f}s  {self.done:4d} done  SIGKILL {self.service}{leader} "
            f"pid {self.pid}  [{self.kill}]"
        )


def schedule(rng: random.Random, *, rounds: int = 2) -> list[Kill]:
    """Every kind killed `rounds` times, at random points between 3% and 85% of its work."""
    kills = []
    for _ in range(rounds):
        for kind in KINDS:
            target = rng.choice(["replica1", "replica2"]) if kind == REFERENCE_SERVER else kind
            kills.append(
                Kill(round(rng.uniform(0.03, 0.85), 3), round(rng.uniform(0, 1.5), 2), target)
            )
    rng.shuffle(kills)
    return kills


def progress(target: str, expected: Sequence[Expected], seen: Sequence[Seen]) -> float:
    """The share of `target`'s work the log shows done."""
    types = STAGES.get(target)
    if types is None:  # the relay: every event it must publish
        total = sum(len(PATHS[e.outcome]) for e in expected)
        return len({s.event_id for s in seen}) / max(1, total)
    owed = {e.adapter for e in expected if types & {t.rstrip("*") for t in PATHS[e.outcome]}}
    reached = {s.adapter for s in seen if s.event_type in types and s.adapter in owed}
    return len(reached) / max(1, len(owed))


async def relay_leader_pid(database_url: str, timeout_s: float = 20) -> int:
    """The pid of the process whose relay holds the leader lock in this database."""
    conn = await asyncpg.connect(database_url)

    async def leader() -> int | None:
        name = await conn.fetchval(
            "SELECT a.application_name FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " JOIN pg_database d ON d.oid = l.database AND d.datname = current_database()"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1",
            LEADER_LOCK,
        )
        return int(name.removeprefix("relay-")) if name and name.startswith("relay-") else None

    try:
        return await eventually_async(leader, timeout=timeout_s, message="a relay leader")
    finally:
        await conn.close()


async def relay_leader(pipeline: Pipeline, timeout_s: float = 30) -> str:
    """The service whose process leads the relay now. A process killed a moment ago may
    still hold the lock until PostgreSQL notices its session is gone: wait for a live one."""
    supervisor = pipeline.supervisor

    async def live_leader() -> str | None:
        pid = await relay_leader_pid(pipeline.stack.database_url, timeout_s)
        name = supervisor.name_of(pid)
        return name if name is not None and pid not in supervisor.killed else None

    message = "a relay leader that is a live service"
    return await eventually_async(live_leader, timeout=timeout_s, message=message)


async def unleash(pipeline: Pipeline, kills: Sequence[Kill]) -> list[Performed]:
    """Carry out the schedule against the pipeline's supervised services: each kill as soon
    as its target has done its share of work (and came back from the kill before)."""
    supervisor = pipeline.supervisor
    pending = list(kills)
    performed: list[Performed] = []
    while pending:
        seen = pipeline.follower.snapshot()
        ready = next(
            (k for k in pending if progress(k.target, pipeline.expected, seen) >= k.at), None
        )
        if ready is None:
            await asyncio.sleep(0.1)
            continue
        pending.remove(ready)
        await asyncio.sleep(ready.delay_s)
        service = ready.target
        if ready.target == RELAY_LEADER:
            service = await relay_leader(pipeline)
        current = supervisor.pid_of(service)
        if current in supervisor.killed:  # killed a moment ago: strike its successor
            await asyncio.to_thread(supervisor.wait_restarted, service, current)
        pid = supervisor.kill(service)
        at_s = time.monotonic() - pipeline.submitted_at
        performed.append(Performed(ready, service, pid, at_s, pipeline.done()))
        print(f"[chaos] {performed[-1]}", flush=True)
    return performed
