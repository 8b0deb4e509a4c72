"""The retention decision, rule by rule, and the refusal to roll back to what is gone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shared.lifecycle import RevisionStatus, State
from shared.pointers import EnvironmentPointer
from shared.retention import (
    RetentionPolicy,
    RevisionFacts,
    decide_expiry,
    policy_for,
    rollback_refusal,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
V, R, SUP, ACT = State.VALIDATED, State.REJECTED, State.SUPERSEDED, State.ACTIVE


def rev(
    name: str,
    envs: Mapping[str, State] | None = None,
    *,
    track: State = V,
    age_days: float = 100,
    superseded: Mapping[str, int] | None = None,
    adapter: str = "chat",
) -> RevisionFacts:
    """A revision registered `age_days` ago; `superseded` gives each env's supersession seq."""
    return RevisionFacts(
        adapter=adapter,
        revision=name,
        version=7,
        status=RevisionStatus(revision_track=track, environment_tracks=dict(envs or {})),
        registered_at=NOW - timedelta(days=age_days),
        superseded_seq=dict(superseded or {}),
    )


def policy(env: str = "prod", keep: int = 1, age: int = 7, adapter: str = "") -> RetentionPolicy:
    return RetentionPolicy(environment=env, adapter=adapter, keep_superseded=keep, min_age_days=age)


def ptr(
    active: str | None = None, canary: str | None = None, target: str | None = None
) -> EnvironmentPointer:
    return EnvironmentPointer(active=active, canary=canary, rollback_target=target)


@dataclass
class Case:
    name: str
    revisions: list[RevisionFacts]
    expired: set[str]
    pointers: dict[tuple[str, str], EnvironmentPointer] = field(default_factory=dict)
    policies: list[RetentionPolicy] = field(default_factory=lambda: [policy()])
    holds: set[tuple[str, str]] = field(default_factory=set)


# r1 .. r4 superseded in prod in this order (seq 10, 20, 30, 40), r5 active.
HISTORY = [rev(f"r{i}", {"prod": SUP}, superseded={"prod": 10 * i}) for i in range(1, 5)]
ACTIVE = rev("r5", {"prod": ACT})
PROD_POINTER = {("chat", "prod"): ptr(active="r5", target="r4")}

CASES = [
    Case("the active revision is kept", [ACTIVE], set(), PROD_POINTER, [policy(keep=0, age=0)]),
    Case(
        "the canary is kept even without a pointer",
        [rev("c", {"prod": State.CANARY})],
        set(),
        policies=[policy(keep=0, age=0)],
    ),
    Case(
        "the rollback target is kept when the policy keeps no superseded revision",
        [*HISTORY, ACTIVE],
        {"r1", "r2", "r3"},
        PROD_POINTER,
        [policy(keep=0, age=0)],
    ),
    Case(
        "the newest n superseded are kept and the older ones expire",
        [*HISTORY, ACTIVE],
        {"r1", "r2"},
        PROD_POINTER,
        [policy(keep=2, age=0)],
    ),
    Case(
        "newest means superseded last, not registered last",
        [
            rev(
                "old-but-recently-superseded", {"prod": SUP}, age_days=300, superseded={"prod": 99}
            ),
            rev("new-but-superseded-long-ago", {"prod": SUP}, age_days=30, superseded={"prod": 5}),
        ],
        {"new-but-superseded-long-ago"},
        policies=[policy(keep=1, age=0)],
    ),
    Case(
        "a revision younger than the minimum age is kept",
        [rev("young", {"prod": State.ROLLED_BACK}, age_days=6.9), rev("old", {"prod": SUP})],
        {"old"},
        policies=[policy(keep=0, age=7)],
    ),
    Case(
        "a revision under a legal hold is kept",
        [*HISTORY, ACTIVE],
        {"r2", "r3"},
        PROD_POINTER,
        [policy(keep=0, age=0)],
        holds={("chat", "r1")},
    ),
    Case("without any policy nothing expires", [*HISTORY, ACTIVE], set(), PROD_POINTER, []),
    Case(
        "an environment without a policy keeps the revisions that have a track there",
        [rev("both", {"prod": SUP, "staging": SUP}), rev("prod-only", {"prod": SUP})],
        {"prod-only"},
        policies=[policy(keep=0, age=0)],
    ),
    Case(
        "an adapter's own policy overrides the environment's default",
        [rev("a1", {"prod": SUP}, superseded={"prod": 1}), rev("a2", {"prod": SUP})],
        set(),
        policies=[policy(keep=0, age=0), policy(keep=2, age=0, adapter="chat")],
    ),
    Case(
        "another adapter's policy does not apply",
        [rev("a1", {"prod": SUP})],
        {"a1"},
        policies=[policy(keep=0, age=0), policy(keep=5, age=0, adapter="other")],
    ),
    Case(
        "a rejected revision answers to every environment that has a policy for its adapter",
        [rev("bad", track=R, age_days=10), rev("fresh-bad", track=R, age_days=1)],
        {"bad"},
        policies=[policy(env="prod", keep=0, age=0), policy(env="staging", keep=0, age=5)],
    ),
    Case(
        "a validated revision awaiting its evaluation is in flight and kept, however old",
        [rev("idle", {}, age_days=800)],
        set(),
        policies=[policy(keep=0, age=0)],
    ),
    Case(
        "revisions awaiting an approver or a rollout are in flight and kept",
        [
            rev("judged", {"prod": State.EVALUATED}, age_days=800),
            rev("approved", {"prod": State.APPROVED}, age_days=800),
            rev("failed", {"prod": State.EVALUATION_FAILED}, age_days=800),
        ],
        {"failed"},
        policies=[policy(keep=0, age=0)],
    ),
    Case(
        "a revision still registered waits for its verdict",
        [rev("new", track=State.REGISTERED)],
        set(),
        policies=[policy(keep=0, age=0)],
    ),
    Case(
        "expired revisions are not decided again and no longer count among those kept",
        [
            rev("gone", {"prod": SUP}, track=State.ARCHIVED, superseded={"prod": 50}),
            rev("kept", {"prod": SUP}, superseded={"prod": 40}),
            rev("older", {"prod": SUP}, superseded={"prod": 30}),
        ],
        {"older"},
        policies=[policy(keep=1, age=0)],
    ),
    Case(
        "a revision rolled back expires once old enough",
        [rev("bad-release", {"prod": State.ROLLED_BACK})],
        {"bad-release"},
        policies=[policy(keep=5, age=7)],
    ),
    Case(
        "a revision kept by any environment's policy is kept",
        [
            rev("x", {"prod": SUP, "staging": SUP}, superseded={"prod": 1, "staging": 9}),
            rev("y", {"prod": SUP, "staging": SUP}, superseded={"prod": 2, "staging": 8}),
        ],
        {"y"},
        policies=[policy(env="prod", keep=0, age=0), policy(env="staging", keep=1, age=0)],
    ),
    Case(
        "the largest minimum age among the governing policies applies",
        [rev("x", {"prod": SUP, "staging": SUP}, age_days=20)],
        set(),
        policies=[policy(env="prod", keep=0, age=7), policy(env="staging", keep=0, age=30)],
    ),
    Case(
        "a pointer of another adapter naming the same digest does not keep this one",
        [rev("same-digest", {"prod": SUP})],
        {"same-digest"},
        {("other", "prod"): ptr(active="same-digest")},
        [policy(keep=0, age=0)],
    ),
    Case(
        "a revision named by a pointer in any environment is kept",
        [rev("t", {"prod": SUP, "staging": SUP})],
        set(),
        {("chat", "staging"): ptr(target="t")},
        [policy(env="prod", keep=0, age=0), policy(env="staging", keep=0, age=0)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide_expiry_applies_each_retention_rule(case: Case) -> None:
    decisions = decide_expiry(case.revisions, case.pointers, case.policies, case.holds, NOW)
    assert {d.revision for d in decisions} == case.expired


def test_a_decision_carries_the_version_read_the_reason_and_the_policy() -> None:
    [decision] = decide_expiry([HISTORY[0]], {}, [policy(keep=0, age=7)], set(), NOW)
    assert (decision.adapter, decision.revision, decision.version) == ("chat", "r1", 7)
    assert "superseded in prod beyond the newest 0 kept" in decision.reason
    assert "older than 7 days" in decision.reason
    assert decision.policy == {
        "prod.scope": "environment default",
        "prod.keep_superseded": "0",
        "prod.min_age_days": "7",
    }


def test_decisions_follow_the_order_of_the_revisions_given() -> None:
    decisions = decide_expiry(list(reversed(HISTORY)), {}, [policy(keep=0, age=0)], set(), NOW)
    assert [d.revision for d in decisions] == ["r4", "r3", "r2", "r1"]


def test_the_adapters_own_policy_wins_over_the_default_whatever_their_order() -> None:
    own, default = policy(keep=9, adapter="chat"), policy(keep=1)
    assert policy_for([own, default], "prod", "chat") is own
    assert policy_for([default, own], "prod", "chat") is own
    assert policy_for([default, own], "prod", "other") is default
    assert policy_for([default], "staging", "chat") is None


def test_a_policy_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        policy(keep=-1)


REFUSALS = [
    ("a superseded revision may serve again", RevisionStatus(V, {"prod": SUP}), None),
    ("an unknown revision is refused", None, "no such revision is registered"),
    (
        "an archived revision is refused, saying so",
        RevisionStatus(State.ARCHIVED, {"prod": SUP}),
        "the revision is archived (manifest and hashes in cold storage",
    ),
    (
        "a deleted revision is refused, saying it is archived and its weights are gone",
        RevisionStatus(State.DELETED, {"prod": SUP}),
        "is archived and its weights were deleted",
    ),
    (
        "an expired revision is refused",
        RevisionStatus(State.EXPIRED, {"prod": SUP}),
        "expired under the retention policy",
    ),
    (
        "a rolled-back revision is refused",
        RevisionStatus(V, {"prod": State.ROLLED_BACK}),
        "was rolled back in prod",
    ),
    ("the active revision is refused", RevisionStatus(V, {"prod": ACT}), "already active"),
    (
        "a revision that never served there is refused",
        RevisionStatus(V, {"staging": SUP}),
        "never served in prod",
    ),
    ("a rejected revision is refused", RevisionStatus(R), "is rejected, not validated"),
]


@pytest.mark.parametrize(("name", "status", "expected"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_rollback_refusal_says_why_a_revision_cannot_serve_again(
    name: str, status: RevisionStatus | None, expected: str | None
) -> None:
    refusal = rollback_refusal("chat", "r1", "prod", status)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and expected in refusal, refusal
        assert refusal.startswith("cannot roll chat in prod back to r1")
