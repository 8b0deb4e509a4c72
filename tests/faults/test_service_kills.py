"""Services SIGKILLed at random moments during 500 concurrent promotions, every kind of
service and whichever process leads the outbox relay among them, each restarted by the
supervisor: every revision still ends Activated (or Rejected, for the bad ones) exactly
once, the registry agrees, and the audit log verifies.

Replay a failure with the seed it prints: `FAULTS_SEED=<seed> .venv/bin/pytest -m faults
tests/faults/test_service_kills.py -s`.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from tests.conftest import Infra
from tests.pipeline.chaos import KINDS, REFERENCE_SERVER, schedule, unleash
from tests.pipeline.driver import Pipeline

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PROMOTIONS = 500


@pytest.mark.timeout(900)
async def test_killing_any_service_at_any_moment_loses_and_duplicates_no_promotion(
    infra: Infra, tmp_path: Path
) -> None:
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1 << 32))
    kills = schedule(random.Random(seed))
    print(f"\n[chaos] seed {seed} (replay: FAULTS_SEED={seed}); logs in {tmp_path}")
    for kill in kills:
        print(f"[chaos] scheduled {kill}")
    pipeline = await Pipeline.start(infra, tmp_path)
    try:
        await pipeline.promote(PROMOTIONS)
        chaos = asyncio.create_task(unleash(pipeline, kills))
        try:
            took = await pipeline.wait(timeout_s=600, stall_s=120)
            performed = await asyncio.wait_for(chaos, timeout=60)
        finally:
            chaos.cancel()
        report = await pipeline.report()
        print(
            f"[chaos] {PROMOTIONS} promotions in {took:.0f}s, {len(performed)} kills, "
            f"{report.duplicates} duplicates on the wire, {report.events} distinct events; "
            + pipeline.bot_summary().strip()
        )
        report.raise_if_bad(f"seed {seed}")
        assert sorted(map(str, (p.kill for p in performed))) == sorted(map(str, kills))
        killed = {p.kill.target for p in performed} | {p.service for p in performed}
        assert set(KINDS) - {REFERENCE_SERVER} <= killed, killed  # RELAY_LEADER among them
        assert killed & {"replica1", "replica2"}, killed
        struck = [d for d in pipeline.supervisor.deaths if d.killed]
        assert sorted(d.pid for d in struck) == sorted(p.pid for p in performed)
        died = pipeline.supervisor.unexpected_deaths()
        assert not died, f"seed {seed}: services died on their own: {died}"
        print(pipeline.audit().strip())
    finally:
        await pipeline.stop()
