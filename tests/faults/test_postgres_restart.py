"""PostgreSQL restarted mid-run (the project's own cluster, with its own scripts, back on
the same port within seconds) while 100 promotions are in flight: no service dies of it,
the relay is led again, every revision still ends Activated (or Rejected) exactly once and
the audit log verifies.

The cluster is shared with every other test of the session: the outage is kept to the
few seconds a fast stop and a start take.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import REPO, Infra
from tests.pipeline.chaos import relay_leader_pid
from tests.pipeline.driver import Pipeline, until_done

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PROMOTIONS = 100


def pg_script(name: str, port: str) -> float:
    """Run infra/postgres/<name>.sh for the session's cluster; the seconds it took."""
    started = time.monotonic()
    result = subprocess.run(
        [str(REPO / "infra" / "postgres" / f"{name}.sh")],
        cwd=REPO,
        env={**os.environ, "PG_PORT": port, "VAR_DIR": str(REPO / "var")},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"{name}.sh: {result.stdout}{result.stderr}"
    return time.monotonic() - started


async def restart_postgres(port: str, down_s: float) -> float:
    """Stop the cluster, keep it down `down_s` (a restart with crash recovery takes seconds,
    not the fraction of one an idle test cluster needs), start it; the outage in seconds."""
    began = time.monotonic()
    try:
        await asyncio.to_thread(pg_script, "stop", port)
        await asyncio.sleep(down_s)
    finally:
        await asyncio.to_thread(pg_script, "start", port)  # never leave the shared one down
    return time.monotonic() - began


async def postmaster_started(database_url: str) -> datetime:
    conn = await asyncpg.connect(database_url)
    try:
        started: datetime = await conn.fetchval("SELECT pg_postmaster_start_time()")
        return started
    finally:
        await conn.close()


@pytest.mark.timeout(600)
async def test_a_postgres_restart_mid_run_loses_and_duplicates_no_promotion(
    infra: Infra, tmp_path: Path
) -> None:
    match = re.search(r"@127\.0\.0\.1:(\d+)/", infra.database_url)
    assert match, f"not the project's local cluster: {infra.database_url}"
    port = match.group(1)
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1 << 32))
    rng = random.Random(seed)
    at, down_s = rng.uniform(0.2, 0.6), rng.uniform(3.0, 5.0)
    print(
        f"\n[pg] seed {seed}: restart after {at:.0%} of the promotions, down {down_s:.1f}s; "
        f"logs in {tmp_path}"
    )
    pipeline = await Pipeline.start(infra, tmp_path)
    try:
        await pipeline.promote(PROMOTIONS)
        await until_done(pipeline, at * PROMOTIONS)
        leader_before = await relay_leader_pid(pipeline.stack.database_url)
        started_before = await postmaster_started(infra.database_url)
        in_flight = PROMOTIONS - pipeline.done()
        outage = await restart_postgres(port, down_s)
        print(f"[pg] restarted with {in_flight} promotions in flight; down for {outage:.1f}s")
        # The same port as before, and really a new server (not a script that did nothing).
        assert await postmaster_started(infra.database_url) > started_before

        took = await pipeline.wait(timeout_s=300, stall_s=90)
        report = await pipeline.report()
        leader_after = await relay_leader_pid(pipeline.stack.database_url)
        print(
            f"[pg] {PROMOTIONS} promotions in {took:.0f}s; relay leader pid {leader_before} "
            f"before, {leader_after} after; {report.duplicates} duplicates on the wire; "
            + pipeline.bot_summary().strip()
        )
        report.raise_if_bad(f"seed {seed}")
        died = pipeline.supervisor.unexpected_deaths()
        assert not died, f"services died of the restart (the supervisor restarted them): {died}"
        print(pipeline.audit().strip())
    finally:
        await pipeline.stop()
