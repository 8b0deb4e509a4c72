"""Rollout decisions: which events a request commits, and the reason when it commits none."""

from __future__ import annotations

from typing import Any

import pytest

from services.activator.analysis import Verdict
from services.activator.plans import (
    Outcome,
    Plan,
    PlanAction,
    Refused,
    RequestAction,
    Situation,
    operator_refusal,
    plan_abort,
    plan_expand,
    plan_rollback,
    plan_rollout,
)
from shared.events import (
    Actor,
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionRolledBack,
    RevisionSuperseded,
)
from shared.lifecycle import RevisionStatus, State
from shared.pointers import EnvironmentPointer

ENV = "production"
OLD, NEW, OTHER = "sha256:" + "0" * 64, "sha256:" + "1" * 64, "sha256:" + "2" * 64


def status(state: State) -> RevisionStatus:
    return RevisionStatus(revision_track=State.VALIDATED, environment_tracks={ENV: state})


def situation(
    pointer: EnvironmentPointer, steps: tuple[int, ...] = (5, 25, 50, 100), **states: State
) -> Situation:
    names = {"old": OLD, "new": NEW, "other": OTHER}
    return Situation(
        environment=ENV,
        pointer=pointer,
        statuses={names[k]: status(v) for k, v in states.items()},
        steps=steps,
    )


def moves(plan: Plan) -> list[tuple[str, str]]:
    return [(m.event.__name__, m.revision) for m in plan.moves]


SERVING = EnvironmentPointer(active=OLD)
CANARY = EnvironmentPointer(active=OLD, canary=NEW, canary_percent=5, rollback_target=OTHER)

ROLLOUTS: list[tuple[str, Situation, dict[str, Any], list[tuple[type, str]]]] = [
    ("the policy's first step", situation(SERVING, new=State.APPROVED), {}, [(CanaryStarted, NEW)]),
    (
        "an operator's share",
        situation(SERVING, new=State.APPROVED),
        {"percent": 30},
        [(CanaryStarted, NEW)],
    ),
    (
        "tenants only",
        situation(SERVING, new=State.APPROVED),
        {"tenants": ["acme"]},
        [(CanaryStarted, NEW)],
    ),
    (
        "a zero-length policy activates",
        situation(SERVING, steps=(100,), new=State.APPROVED),
        {},
        [(RevisionSuperseded, OLD), (RevisionActivated, NEW)],
    ),
    (
        "no steps at all activates",
        situation(SERVING, steps=(), new=State.APPROVED),
        {},
        [(RevisionSuperseded, OLD), (RevisionActivated, NEW)],
    ),
    (
        "100 percent activates",
        situation(SERVING, new=State.APPROVED),
        {"percent": 100},
        [(RevisionSuperseded, OLD), (RevisionActivated, NEW)],
    ),
    (
        "nothing serving activates",
        situation(EnvironmentPointer(), new=State.APPROVED),
        {},
        [(RevisionActivated, NEW)],
    ),
    (
        "promoting the canary activates it",
        situation(CANARY, new=State.CANARY),
        {},
        [(RevisionSuperseded, OLD), (RevisionActivated, NEW)],
    ),
]


@pytest.mark.parametrize(
    ("given", "asked", "expected"), [r[1:] for r in ROLLOUTS], ids=[r[0] for r in ROLLOUTS]
)
def test_a_rollout_commits_what_the_request_and_policy_say(
    given: Situation, asked: dict[str, Any], expected: list[tuple[type, str]]
) -> None:
    plan = plan_rollout(given, NEW, reason="", **asked)

    assert moves(plan) == [(cls.__name__, rev) for cls, rev in expected]
    assert plan.load == (NEW,)


def test_a_canary_names_its_share_tenants_and_the_stable_revision() -> None:
    plan = plan_rollout(
        situation(SERVING, new=State.APPROVED), NEW, percent=0, tenants=["acme"], reason=""
    )

    assert dict(plan.moves[0].fields) == {
        "traffic_percent": 0,
        "tenants": ["acme"],
        "stable_revision": OLD,
    }


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (situation(SERVING, new=State.EVALUATED), "only an approved revision"),
        (situation(SERVING, new=State.ROLLED_BACK), "only an approved revision"),
        (
            situation(EnvironmentPointer(active=OLD, canary=OTHER), new=State.APPROVED),
            "in progress",
        ),
        (situation(SERVING), "unknown"),
    ],
)
def test_a_rollout_is_refused_with_its_reason(given: Situation, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        plan_rollout(given, NEW, reason="")


def test_an_expansion_raises_the_share_and_reaching_100_activates() -> None:
    given = situation(CANARY, new=State.CANARY)

    assert moves(plan_expand(given, NEW, 25)) == [("CanaryExpanded", NEW)]
    assert moves(plan_expand(given, NEW, 100)) == [
        ("RevisionSuperseded", OLD),
        ("RevisionActivated", NEW),
    ]
    with pytest.raises(Refused, match="already takes 5%"):
        plan_expand(given, NEW, 5)
    with pytest.raises(Refused, match="not the canary"):
        plan_expand(given, OTHER, 50)


def test_an_expansion_carries_the_analysis_evidence() -> None:
    plan = plan_expand(
        situation(CANARY, new=State.CANARY), NEW, 25, evidence={"decision": "expand"}
    )

    assert plan.moves[0].event is CanaryExpanded
    assert plan.moves[0].fields["evidence"] == {"decision": "expand"}


ROLLBACKS = [
    ("a canary alone", CANARY, None, [("RevisionRolledBack", NEW)], (OLD,)),
    (
        "the active revision to the target",
        EnvironmentPointer(active=NEW, rollback_target=OLD),
        None,
        [("RevisionRolledBack", NEW), ("RevisionActivated", OLD)],
        (OLD,),
    ),
    (
        "to a named revision",
        EnvironmentPointer(active=NEW, rollback_target=OLD),
        OTHER,
        [("RevisionRolledBack", NEW), ("RevisionActivated", OTHER)],
        (OTHER,),
    ),
    (
        "a canary and the active revision at once",
        CANARY,
        OTHER,
        [("RevisionRolledBack", NEW), ("RevisionRolledBack", OLD), ("RevisionActivated", OTHER)],
        (OTHER,),
    ),
]


@pytest.mark.parametrize(
    ("pointer", "to", "expected", "load"), [r[1:] for r in ROLLBACKS], ids=[r[0] for r in ROLLBACKS]
)
def test_a_rollback_commits_one_pointer_change(
    pointer: EnvironmentPointer,
    to: str | None,
    expected: list[tuple[str, str]],
    load: tuple[str, ...],
) -> None:
    plan = plan_rollback(situation(pointer), to, reason="bad answers")

    assert moves(plan) == expected
    assert plan.load == load
    rolled_back = plan.moves[0]
    assert rolled_back.event is RevisionRolledBack and rolled_back.fields["reason"] == "bad answers"


@pytest.mark.parametrize(
    ("pointer", "to", "refusal", "reason"),
    [
        (EnvironmentPointer(), None, None, "nothing is active"),
        (EnvironmentPointer(active=NEW), None, None, "no rollback target"),
        (EnvironmentPointer(active=NEW, rollback_target=OLD), NEW, None, "already active"),
        (EnvironmentPointer(active=NEW, rollback_target=OLD), None, "it expired", "it expired"),
    ],
)
def test_a_rollback_is_refused_with_its_reason(
    pointer: EnvironmentPointer, to: str | None, refusal: str | None, reason: str
) -> None:
    with pytest.raises(Refused, match=reason):
        plan_rollback(situation(pointer), to, reason="x", target_refusal=refusal)


def test_an_abort_rolls_back_only_the_named_canary() -> None:
    assert moves(plan_abort(situation(CANARY), None, reason="x")) == [("RevisionRolledBack", NEW)]
    with pytest.raises(Refused, match="not the canary"):
        plan_abort(situation(CANARY), OTHER, reason="x")
    with pytest.raises(Refused):
        plan_abort(situation(SERVING), None, reason="x")


OPERATOR_ROLE = frozenset({"operator"})


@pytest.mark.parametrize(
    ("actor", "held", "may_operate", "refused"),
    [
        (Actor(principal="carol", role="operator"), OPERATOR_ROLE, False, None),
        (Actor(principal="bob", role="operator"), {"operator", "approver"}, True, None),
        (
            Actor(principal="bob", role="operator"),
            {"operator", "approver"},
            False,
            "separates approving from operating",
        ),
        (Actor(principal="root", role="admin"), {"admin"}, False, None),
        (Actor(principal="eve", role="auditor"), {"auditor"}, True, "only an operator or admin"),
        (Actor(principal="bob", role="approver"), {"approver"}, True, "only an operator or admin"),
        # the registry, not the command, says who holds what
        (Actor(principal="ghost", role="admin"), set(), True, "no active principal"),
        (Actor(principal="revoked-rita", role="operator"), set(), True, "unknown or revoked"),
        (Actor(principal="eve", role="admin"), {"auditor"}, True, "holds auditor, not admin"),
    ],
)
def test_only_operators_operate_and_not_on_what_they_approved_where_duties_are_separate(
    actor: Actor, held: set[str], may_operate: bool, refused: str | None
) -> None:
    refusal = operator_refusal(actor, held, ["bob"], may_operate, NEW)

    assert refusal is None if refused is None else refused in (refusal or "")


@pytest.mark.parametrize(
    ("operator", "refused"),
    [
        ("bob-ops", "approved"),  # bob's second principal
        ("Bob", "approved"),  # his name, spelled otherwise
        ("carol", None),  # another person
    ],
)
def test_an_approver_may_not_operate_under_another_principal_or_spelling(
    operator: str, refused: str | None
) -> None:
    actor = Actor(principal=operator, role="operator")
    persons = {"bob-ops": "bob", "bob": "bob", "carol": "carol"}
    refusal = operator_refusal(actor, {"operator"}, ["bob"], False, NEW, persons)
    assert refusal is None if refused is None else refused in (refusal or "")


@pytest.mark.parametrize("verdict", list(Verdict))
def test_an_analysis_request_records_the_action_it_always_recorded(verdict: Verdict) -> None:
    # The value is in activator_outcomes rows already: `analysis.<verdict>`.
    assert RequestAction.of_analysis(verdict).value == f"analysis.{verdict.value}"


def test_every_outcome_and_action_keeps_its_stored_value() -> None:
    assert {o.value for o in Outcome} == {"committed", "refused", "failed", "waiting"}
    assert {a.value for a in PlanAction} == {"activate", "canary", "expand", "rollback"}
