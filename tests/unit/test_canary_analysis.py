"""The canary analysis decides expand, hold, promote or roll back from metrics alone."""

from __future__ import annotations

import pytest

from services.activator.analysis import AnalysisPolicy, Observation, Verdict, analyse

POLICY = AnalysisPolicy(
    steps=(5, 25, 50, 100),
    step_interval_s=60,
    min_samples=50,
    max_error_rate=0.05,
    error_rate_margin=0.02,
    max_p95_ratio=1.5,
    min_p95_delta_ms=50,
)
STABLE = Observation(requests=1000, errors=10, p95_ms=100)


def seen(requests: int, errors: int = 0, p95_ms: float | None = 100) -> Observation:
    return Observation(requests=requests, errors=errors, p95_ms=p95_ms)


# (case, traffic percent, canary, stable, seconds observed, verdict, next percent)
CASES = [
    ("healthy after the interval expands", 5, seen(60), STABLE, 61, Verdict.expand, 25),
    ("healthy at 25% expands to 50", 25, seen(60), STABLE, 61, Verdict.expand, 50),
    ("healthy at the last step promotes", 50, seen(60), STABLE, 61, Verdict.promote, 100),
    ("too few samples holds", 5, seen(49), STABLE, 600, Verdict.hold, None),
    ("healthy but too soon holds", 5, seen(500), STABLE, 59, Verdict.hold, None),
    ("error rate above the floor rolls back", 5, seen(100, 6), STABLE, 61, Verdict.roll_back, None),
    ("error rate at the floor passes", 5, seen(100, 5), STABLE, 61, Verdict.expand, 25),
    (
        "a stable revision's own errors raise the limit",
        5,
        seen(100, 9),
        seen(1000, 80),
        61,
        Verdict.expand,
        25,
    ),
    (
        "a certain breach rolls back before min samples",
        5,
        seen(10, 3),
        STABLE,
        1,
        Verdict.roll_back,
        None,
    ),
    ("two errors in ten may still pass: hold", 5, seen(10, 2), STABLE, 1, Verdict.hold, None),
    (
        "p95 over 1.5x the stable one rolls back",
        5,
        seen(60, 0, 160),
        STABLE,
        61,
        Verdict.roll_back,
        None,
    ),
    ("p95 within the slack passes", 5, seen(60, 0, 149), STABLE, 61, Verdict.expand, 25),
    (
        "a stable revision with few samples sets no latency limit",
        5,
        seen(60, 0, 900),
        seen(10, 0, 100),
        61,
        Verdict.expand,
        25,
    ),
    ("no stable revision: errors still judged", 5, seen(60, 10), None, 61, Verdict.roll_back, None),
    ("no stable revision: healthy expands", 5, seen(60), None, 61, Verdict.expand, 25),
    ("a tenant-only canary moves to the first step", 0, seen(60), STABLE, 61, Verdict.expand, 5),
]


@pytest.mark.parametrize(
    ("percent", "canary", "stable", "elapsed", "verdict", "following"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_the_analysis_decides_by_its_rules(
    percent: int,
    canary: Observation,
    stable: Observation | None,
    elapsed: float,
    verdict: Verdict,
    following: int | None,
) -> None:
    decision = analyse(POLICY, percent, canary, stable, elapsed)

    assert (decision.verdict, decision.next_percent) == (verdict, following), decision.reason
    assert decision.evidence["decision"] == verdict.value
    assert decision.evidence["canary.requests"] == str(canary.requests)


def test_an_absolute_latency_cap_applies_without_a_stable_revision() -> None:
    capped = AnalysisPolicy(min_samples=10, step_interval_s=0, max_p95_ms=200)

    assert analyse(capped, 5, seen(20, 0, 250), None, 0).verdict is Verdict.roll_back
    assert analyse(capped, 5, seen(20, 0, 150), None, 0).verdict is Verdict.expand


def test_an_environment_that_advances_by_hand_only_holds_or_rolls_back() -> None:
    manual = AnalysisPolicy(min_samples=10, step_interval_s=0, auto_advance=False)

    assert analyse(manual, 5, seen(20), STABLE, 10).verdict is Verdict.hold
    assert analyse(manual, 5, seen(20, 5), STABLE, 10).verdict is Verdict.roll_back


def test_the_evidence_carries_both_revisions_and_the_limits() -> None:
    decision = analyse(POLICY, 25, seen(100, 6, 120), STABLE, 61)

    assert decision.evidence["canary.error_rate"] == "0.06"
    assert decision.evidence["stable.error_rate"] == "0.01"
    assert decision.evidence["limit.error_rate"] == "0.05"
    assert decision.evidence["limit.p95_ms"] == "150"
    assert decision.evidence["traffic_percent"] == "25"
    assert "above the limit" in decision.evidence["reason"]


def test_stored_settings_override_the_defaults_and_steps_come_from_the_environment() -> None:
    policy = AnalysisPolicy.from_settings(
        (10, 50, 100), {"min_samples": "200", "max_error_rate": 0.01, "auto_advance": "false"}
    )

    assert (policy.steps, policy.min_samples, policy.max_error_rate) == ((10, 50, 100), 200, 0.01)
    assert policy.auto_advance is False and policy.step_interval_s == 60
    assert policy.next_step(10) == 50 and policy.next_step(100) is None


@pytest.mark.parametrize("steps", [(), (100,)])
def test_an_empty_or_full_first_step_is_a_zero_length_canary(steps: tuple[int, ...]) -> None:
    assert AnalysisPolicy.from_settings(steps, {}).zero_length


@pytest.mark.parametrize(
    ("steps", "settings"),
    [((50, 10), {}), ((0, 50), {}), ((10,), {"min_samples": 0}), ((10,), {"speed": 1})],
)
def test_nonsense_settings_are_refused(steps: tuple[int, ...], settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AnalysisPolicy.from_settings(steps, settings)
