"""Per-revision counters scraped from replicas, windowed per canary step, into observations."""

from __future__ import annotations

import math

import pytest

from services.activator.metrics import (
    Counters,
    observe,
    parse_metrics,
    quantile,
    snapshot_from_json,
    snapshot_to_json,
    window,
)
from services.reference_server.telemetry import Telemetry


def exported(*requests: tuple[str, float, bool]) -> str:
    """What a reference replica exports after serving `requests` (lora, seconds, failed)."""
    telemetry = Telemetry()
    for lora, seconds, failed in requests:
        telemetry.observe_lora(lora, seconds, failed=failed)
    telemetry.observe_base("tiny", 0.5, failed=True)
    return telemetry.exposition().decode()


def test_the_replica_export_parses_into_per_revision_counters_without_base_errors() -> None:
    text = exported(("a@1", 0.02, False), ("a@1", 0.2, True), ("a@2", 0.02, False))

    parsed = parse_metrics(text)

    assert set(parsed) == {"a@1", "a@2"}
    assert (parsed["a@1"].requests, parsed["a@1"].errors) == (2, 1)
    assert (parsed["a@2"].requests, parsed["a@2"].errors) == (1, 0)
    assert dict(parsed["a@1"].buckets)[0.025] == 1 and dict(parsed["a@1"].buckets)[math.inf] == 2


def test_a_window_counts_only_what_each_replica_served_since_its_baseline() -> None:
    before = {"r1": {"a@1": Counters(10, 1, ((0.1, 10), (math.inf, 10)))}}
    now = {
        "r1": {"a@1": Counters(15, 3, ((0.1, 14), (math.inf, 15)))},
        "r2": {"a@1": Counters(4, 0, ((0.1, 4), (math.inf, 4)))},  # not in the baseline
    }

    counted = window(now, before)

    assert counted["a@1"] == Counters(5, 2, ((0.1, 4), (math.inf, 5)))


def test_a_replica_whose_counters_went_down_restarted_and_counts_from_zero() -> None:
    before = {"r1": {"a@1": Counters(100, 5, ((math.inf, 100),))}}
    now = {"r1": {"a@1": Counters(3, 0, ((math.inf, 3),))}}

    assert window(now, before)["a@1"].requests == 3


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        (((0.1, 50), (0.2, 100), (math.inf, 100)), 0.19),
        (((0.1, 100), (math.inf, 100)), 0.095),
        (((0.1, 0), (0.5, 0), (math.inf, 10)), 0.5),  # beyond the last finite bound
        (((0.1, 0), (math.inf, 0)), None),
        ((), None),
    ],
)
def test_the_p95_interpolates_like_prometheus(
    buckets: tuple[tuple[float, float], ...], expected: float | None
) -> None:
    found = quantile(0.95, buckets)

    assert found == pytest.approx(expected) if expected is not None else found is None


def test_an_observation_reports_latency_in_milliseconds() -> None:
    observation = observe(Counters(20, 1, ((0.1, 20), (math.inf, 20))))

    assert (observation.requests, observation.errors) == (20, 1)
    assert observation.p95_ms == pytest.approx(95.0)
    assert observe(None).requests == 0


def test_a_baseline_survives_its_round_trip_through_json_infinity_included() -> None:
    snapshot = {"r1": parse_metrics(exported(("a@1", 0.02, False)))}

    restored = snapshot_from_json(snapshot_to_json(snapshot))

    assert restored == snapshot
    assert "Infinity" not in str(snapshot_to_json(snapshot))
