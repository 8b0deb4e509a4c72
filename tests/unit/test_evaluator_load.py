"""The load profile: seeded bursty arrivals, bounded replay, per-target latency figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.gpu_evaluator.load import (
    Arrival,
    LoadProfile,
    ProfileError,
    load_profile,
    load_prompts,
    parse_profile,
    percentile,
    replay,
    schedule,
)
from services.gpu_evaluator.ports import (
    AdapterRef,
    Generation,
    Prompt,
    Target,
    per_prompt,
    user_prompt,
)

SUITES = Path(__file__).resolve().parents[1] / "data" / "suites"
A = AdapterRef("bot", "sha256:" + "a" * 64, Path("/a"))
B = AdapterRef("bot", "sha256:" + "b" * 64, Path("/b"))


class Clock:
    """Time that moves only when the replay sleeps or the backend works."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class TimedBackend:
    """Answers every batch in `batch_s` of the clock's time, two tokens per answer."""

    name = "timed"

    def __init__(self, clock: Clock, batch_s: float) -> None:
        self.clock, self.batch_s = clock, batch_s
        self.batches: list[list[Target]] = []

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def generate(
        self, prompts: Sequence[Prompt], adapter: Target | Sequence[Target], *, max_new_tokens: int
    ) -> list[Generation]:
        self.batches.append(per_prompt(adapter, len(prompts)))
        self.clock.now += self.batch_s
        return [Generation("x", 5, 2, self.batch_s) for _ in prompts]

    def loglik(self, prompts: Any, references: Any, adapter: Any) -> list[Any]:
        raise AssertionError("the load replay must never ask for log-likelihoods")


def test_arrivals_are_seeded_bounded_and_alternate_between_targets() -> None:
    profile = LoadProfile(requests=30, max_seconds=5, rate_per_s=4, seed=3)
    first, again = schedule(profile, 2), schedule(profile, 2)
    assert first == again
    assert len(first) <= 30 and all(0 < a.at_s < 5 for a in first)
    assert [a.at_s for a in first] == sorted(a.at_s for a in first)
    assert [a.target for a in first[:4]] == [0, 1, 0, 1]
    assert schedule(LoadProfile(requests=30, max_seconds=5, rate_per_s=4, seed=4), 2) != first


def test_bursts_add_simultaneous_arrivals_at_their_period() -> None:
    profile = LoadProfile(
        requests=100, max_seconds=3, rate_per_s=0.001, burst_every_s=1.0, burst_size=5
    )
    times = [a.at_s for a in schedule(profile, 1)]
    assert times.count(1.0) == 5 and times.count(2.0) == 5


def test_prompt_lengths_follow_the_profile_within_its_maximum() -> None:
    profile = LoadProfile(
        requests=200,
        max_seconds=1000,
        rate_per_s=1,
        prompt_words_median=10,
        prompt_words_sigma=0.5,
        prompt_words_max=14,
    )
    words = [a.words for a in schedule(profile, 1)]
    assert max(words) <= 14 and min(words) >= 1
    assert 8 <= sorted(words)[len(words) // 2] <= 12


def test_load_prompts_reach_the_arrival_length_with_the_suites_own_words() -> None:
    seeds = [user_prompt("what is the capital of peru?")]
    prompts = load_prompts([Arrival(0.0, 12, 0), Arrival(0.1, 2, 0)], seeds, seed=1)
    long, short = (p[-1].content for p in prompts)
    assert len(long.split()) == 12 and long.endswith("what is the capital of peru?")
    assert set(long.split()) <= {"what", "is", "the", "capital", "of", "peru?"}
    assert short == "what is the capital of peru?"


def test_replay_batches_what_has_arrived_up_to_the_concurrency() -> None:
    clock = Clock()
    backend = TimedBackend(clock, batch_s=0.5)
    arrivals = [
        Arrival(0.0, 3, 0),
        Arrival(0.0, 3, 1),
        Arrival(0.0, 3, 0),
        Arrival(0.1, 3, 1),
        Arrival(2.0, 3, 0),
    ]
    prompts = [user_prompt("p")] * len(arrivals)
    result = replay(
        backend,
        LoadProfile(concurrency=2, max_seconds=10),
        [A, B],
        arrivals,
        prompts,
        clock=clock,
        sleep=clock.sleep,
    )
    assert backend.batches == [[A, B], [A, B], [A]]
    assert [round(s.latency_s, 3) for s in result.served] == [0.5, 0.5, 1.0, 0.9, 0.5]
    assert result.unserved == 0 and result.batches == 3
    stats = result.stats(1)
    assert stats is not None and stats.requests == 2
    assert stats.p50_ms == pytest.approx(700.0)
    assert stats.tokens_per_s == pytest.approx(4 / 1.4)


def test_replay_stops_at_its_time_bound_and_counts_what_it_never_sent() -> None:
    clock = Clock()
    arrivals = [Arrival(t, 3, 0) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]
    result = replay(
        TimedBackend(clock, 0.1),
        LoadProfile(max_seconds=2.5),
        [A],
        arrivals,
        [user_prompt("p")] * 5,
        clock=clock,
        sleep=clock.sleep,
    )
    assert len(result.served) == 3 and result.unserved == 2


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(map(float, range(101))), 95) == 95.0


def test_the_shipped_profile_parses_and_binds_its_digest() -> None:
    profile = load_profile(SUITES / "load", "staging")
    assert profile is not None and profile.name == "ci-small" and profile.concurrency == 8
    assert profile.digest.startswith("sha256:") and profile.source == "default.yaml"
    assert load_profile(None, "staging") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate: 3\n", "unknown keys ['rate']"),
        ("concurrency: 0\n", "must be positive"),
        ("rate_per_s: 0\nburst_size: 0\n", "no arrivals"),
        ("- 1\n", "a load profile is a mapping"),
        ("requests: many\n", "invalid literal"),
    ],
)
def test_a_malformed_profile_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as refused:
        parse_profile(text.encode(), source="staging.yaml")
    assert str(refused.value).startswith("staging.yaml: ") and message in str(refused.value)
