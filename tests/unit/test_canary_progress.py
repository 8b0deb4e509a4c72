"""A canary's progress as operators read it (`GET /canaries`): the step of the plan, samples
against the minimum, rates against their limits, the wait before the next step, and the
verdict of this step only, never the last step's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.activator.analysis import AnalysisPolicy, opening
from services.activator.canary import tick
from services.activator.progress import NOT_JUDGED, canary_progress
from services.activator.routing import lora_name
from services.activator.web import make_app
from tests.unit.test_activator_handlers import ADAPTER, ENV, Rollout

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = AnalysisPolicy(steps=(10, 50, 100), min_samples=50, step_interval_s=300)
JUDGED = {
    "traffic_percent": "10",
    "canary.requests": "12",
    "canary.error_rate": "0.0833",
    "limit.error_rate": "0.05",
    "canary.p95_ms": "180",
    "limit.p95_ms": "none",
    "decision": "hold",
    "reason": "waiting for samples: 12 of 50",
}


def row(percent: int = 10, evidence: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "adapter": "chat",
        "environment": "prod",
        "revision": "sha256:" + "ab" * 32,
        "traffic_percent": percent,
        "step_started_at": START,
        "last_decision": evidence,
    }


@pytest.mark.parametrize(
    ("given", "elapsed_s", "expected"),
    [
        (
            row(10, JUDGED),
            60,
            {
                "step": 1,
                "steps": 3,
                "samples": 12,
                "error_rate": 0.0833,
                "error_rate_limit": 0.05,
                "p95_ms": 180.0,
                "p95_limit_ms": None,
                "next_step_in_s": 240.0,
                "verdict": "hold",
                "reason": "waiting for samples: 12 of 50",
            },
        ),
        # not judged yet: no samples, no verdict
        (row(50), 10, {"step": 2, "samples": 0, "verdict": NOT_JUDGED, "next_step_in_s": 290.0}),
        # the evidence of another share is the last step's: not shown as this one's
        (row(50, JUDGED), 0, {"samples": 0, "verdict": NOT_JUDGED, "error_rate": None}),
        # a share set by hand, off the plan's steps; the interval long over
        (row(20, {**JUDGED, "traffic_percent": "20"}), 900, {"step": None, "next_step_in_s": 0}),
        # a step just begun notes the opening evidence: 0 samples, holding
        (
            row(50, dict(opening(POLICY, 50).evidence)),
            0,
            {"samples": 0, "verdict": "hold", "reason": "waiting for samples: 0 of 50"},
        ),
    ],
)
def test_a_canarys_progress_reads_its_step_samples_limits_and_wait(
    given: dict[str, Any], elapsed_s: float, expected: dict[str, Any]
) -> None:
    progress = canary_progress(given, POLICY, START + timedelta(seconds=elapsed_s))

    assert {key: progress[key] for key in expected} == expected
    assert (progress["min_samples"], progress["traffic_percent"]) == (50, given["traffic_percent"])


async def test_the_canaries_endpoint_lists_every_canary_with_its_progress(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path, analysis={"min_samples": 20, "step_interval_s": 0})
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    for replica in rollout.world.replicas:
        replica.serve(lora_name(ADAPTER, canary), 3)
    await tick(rollout.world.deps)
    app = make_app(rollout.world.store, rollout.world.catalogue)

    async with TestClient(TestServer(app)) as client:
        every = await (await client.get("/canaries")).json()
        elsewhere = await (await client.get("/canaries", params={"environment": "other"})).json()

    [shown] = every["canaries"]
    assert (shown["adapter"], shown["environment"], shown["revision"]) == (ADAPTER, ENV, canary)
    assert (shown["step"], shown["steps"], shown["traffic_percent"]) == (1, 3, 10)
    assert (shown["samples"], shown["min_samples"], shown["verdict"]) == (6, 20, "hold")
    assert shown["reason"] == "waiting for samples: 6 of 20"
    assert elsewhere == {"canaries": []}
