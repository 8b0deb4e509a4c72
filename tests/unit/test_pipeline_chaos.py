"""The fault drill's kill schedule: replayable from its seed, every kind of service in it,
each kill timed by its target's own share of the work."""

from __future__ import annotations

import random
from collections import Counter

from tests.pipeline.chaos import KINDS, REFERENCE_SERVER, RELAY_LEADER, progress, schedule
from tests.pipeline.outcomes import Expected, Outcome, Seen

REV = "sha256:" + "a" * 64


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert schedule(random.Random(7)) == schedule(random.Random(7))
    assert schedule(random.Random(7)) != schedule(random.Random(8))


def test_every_kind_is_killed_once_per_round_between_3_and_85_percent_of_its_work() -> None:
    kills = schedule(random.Random(42), rounds=2)
    kinds = Counter(
        REFERENCE_SERVER if k.target in ("replica1", "replica2") else k.target for k in kills
    )
    assert kinds == Counter({kind: 2 for kind in KINDS})
    assert all(0.03 <= k.at <= 0.85 and 0 <= k.delay_s <= 1.5 for k in kills)


def _seen(adapter: str, event_type: str, event_id: str) -> Seen:
    return Seen(event_id, event_type, adapter, REV, "", 1, event_id)


def test_progress_counts_a_targets_own_events_against_what_it_owes() -> None:
    expected = [
        Expected("a-0", REV, Outcome.activated, "drill"),
        Expected("a-1", REV, Outcome.activated, "drill"),
        Expected("a-2", REV, Outcome.rejected, "drill"),  # the evaluator owes it nothing
    ]
    seen = [
        _seen("a-0", "RevisionRegistered", "1"),
        _seen("a-0", "RevisionEvaluated", "2"),
        _seen("a-0", "RevisionEvaluated", "2"),  # a duplicate on the wire counts once
        _seen("a-2", "RevisionRegistered", "3"),
    ]
    assert progress("gpu_evaluator", expected, seen) == 0.5
    assert progress("ingest", expected, seen) == 2 / 3
    assert progress("activator", expected, seen) == 0
    assert progress(RELAY_LEADER, expected, seen) == 3 / (5 + 5 + 2)
