"""Which ballots count and what they decide: every rule of `decide`, one row each."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from services.approval.decisions import (
    Ballot,
    Choice,
    Outcome,
    Reason,
    Refused,
    Situation,
    Verdict,
    decide,
)
from shared.lifecycle import State

MANIFEST, REPORT = "sha256:" + "a" * 64, "sha256:" + "b" * 64
AWAITING = Situation(
    state=State.EVALUATED,
    revision_state=State.VALIDATED,
    submitter="alice",
    manifest_digest=MANIFEST,
    report_digest=REPORT,
    required_approvals=1,
)


def ballot(principal: str = "bob", choice: Choice = Choice.APPROVE, **changes: Any) -> Ballot:
    values: dict[str, Any] = {
        "principal": principal,
        "choice": choice,
        "manifest_digest": MANIFEST,
        "report_digest": REPORT,
    }
    return Ballot(**(values | changes))


def situation(**changes: Any) -> Situation:
    return dataclasses.replace(AWAITING, **changes)


@pytest.mark.parametrize(
    ("given", "cast", "expected"),
    [
        (situation(), ballot(), Verdict(outcome=Outcome.APPROVED, approvers=("bob",))),
        (
            situation(required_approvals=2),
            ballot(),
            Verdict(outcome=Outcome.RECORDED, approvers=("bob",)),
        ),
        (
            situation(required_approvals=2, approvals=("carol",)),
            ballot(),
            Verdict(outcome=Outcome.APPROVED, approvers=("carol", "bob")),
        ),
        (
            situation(required_approvals=3, approvals=("carol",)),
            ballot(),
            Verdict(outcome=Outcome.RECORDED, approvers=("carol", "bob")),
        ),
        (
            situation(required_approvals=2, approvals=("carol",)),
            ballot(choice=Choice.DENY),
            Verdict(outcome=Outcome.DENIED, approvers=("bob",)),
        ),
        (
            situation(required_approvals=0),
            ballot(),
            Verdict(outcome=Outcome.APPROVED, approvers=("bob",)),
        ),
        (
            situation(submitter=None),
            ballot(),
            Verdict(outcome=Outcome.APPROVED, approvers=("bob",)),
        ),
    ],
    ids=[
        "one-approval-needed-approves",
        "first-of-two-is-recorded",
        "second-distinct-approves-naming-both-in-order",
        "second-of-three-is-recorded",
        "one-denial-decides-despite-earlier-approvals",
        "a-policy-of-zero-still-needs-one",
        "an-unknown-submitter-stops-nobody",
    ],
)
def test_a_ballot_that_counts_yields_its_verdict(
    given: Situation, cast: Ballot, expected: Verdict
) -> None:
    assert decide(given, cast) == expected


@pytest.mark.parametrize(
    ("given", "cast", "reason"),
    [
        (situation(), ballot("alice"), Reason.SEPARATION_OF_DUTIES),
        (situation(), ballot("alice", Choice.DENY), Reason.SEPARATION_OF_DUTIES),
        (situation(), ballot(report_digest="sha256:old"), Reason.STALE_EVIDENCE),
        (situation(), ballot(manifest_digest="sha256:old"), Reason.STALE_EVIDENCE),
        (
            situation(required_approvals=2, approvals=("bob",)),
            ballot(),
            Reason.ALREADY_APPROVED,
        ),
        (
            situation(required_approvals=2, approvals=("bob",)),
            ballot(choice=Choice.DENY),
            Reason.ALREADY_APPROVED,
        ),
        (situation(state=State.APPROVED), ballot(), Reason.ALREADY_DECIDED),
        (situation(state=State.DENIED), ballot(), Reason.ALREADY_DECIDED),
        (situation(state=State.ACTIVE), ballot(), Reason.ALREADY_DECIDED),
        (situation(state=State.VALIDATED), ballot(), Reason.NOT_AWAITING),
        (situation(state=State.EVALUATION_FAILED), ballot(), Reason.NOT_AWAITING),
        (situation(state=None), ballot(), Reason.NOT_AWAITING),
        (situation(revision_state=State.EXPIRED), ballot(), Reason.NOT_AWAITING),
        (situation(report_digest=None), ballot(), Reason.NOT_AWAITING),
    ],
    ids=[
        "submitter-approving",
        "submitter-denying",
        "stale-report",
        "stale-manifest",
        "same-approver-twice",
        "same-approver-turning-to-deny",
        "already-approved",
        "already-denied",
        "already-active",
        "not-yet-evaluated",
        "evaluation-failed",
        "environment-never-started",
        "revision-expired",
        "evaluation-not-yet-projected",
    ],
)
def test_a_ballot_that_cannot_count_is_refused_with_its_reason(
    given: Situation, cast: Ballot, reason: Reason
) -> None:
    with pytest.raises(Refused) as refused:
        decide(given, cast)
    assert refused.value.reason is reason
    assert refused.value.message


def test_separation_of_duties_is_judged_before_the_evidence_is() -> None:
    with pytest.raises(Refused) as refused:
        decide(situation(), ballot("alice", report_digest="sha256:old"))
    assert refused.value.reason is Reason.SEPARATION_OF_DUTIES


def test_a_stale_refusal_names_both_the_current_and_the_named_digest() -> None:
    with pytest.raises(Refused) as refused:
        decide(situation(), ballot(report_digest="sha256:old"))
    assert REPORT in refused.value.message and "sha256:old" in refused.value.message


FULL_WIDTH_CAROL = "\uff43\uff41\uff52\uff4f\uff4c"  # NFKC: carol

# Issue #15: separation of duties compares persons, not the spelling of a name.
CAROL = {"carol": "carol", "carol-ops": "carol", "carol-2": "carol"}


@pytest.mark.parametrize(
    ("submitter", "voter"),
    [
        ("carol", "Carol"),  # case
        ("carol", "carol "),  # trailing space
        ("carol", FULL_WIDTH_CAROL),  # full-width letters (NFKC)
        ("carol", "carol-ops"),  # her second principal
        ("carol-2", "carol-ops"),  # two principals of hers
    ],
)
def test_the_submitter_takes_no_decision_under_any_spelling_or_principal(
    submitter: str, voter: str
) -> None:
    with pytest.raises(Refused) as refused:
        decide(situation(submitter=submitter, persons=CAROL), ballot(voter))
    assert refused.value.reason is Reason.SEPARATION_OF_DUTIES


@pytest.mark.parametrize("second", ["carol-ops", "carol-2", "CAROL", "carol "])
def test_one_person_counts_once_toward_the_approvals_an_environment_needs(second: str) -> None:
    given = situation(required_approvals=2, approvals=("carol",), persons=CAROL)
    with pytest.raises(Refused) as refused:
        decide(given, ballot(second))
    assert refused.value.reason is Reason.ALREADY_APPROVED
    assert "more distinct person(s) needed" in refused.value.message


def test_another_person_still_completes_the_approvals() -> None:
    given = situation(required_approvals=2, approvals=("carol",), persons=CAROL)
    verdict = decide(given, ballot("dave"))
    assert verdict == Verdict(outcome=Outcome.APPROVED, approvers=("carol", "dave"))


# The submitter is a string on the revision's events: every spelling of carol's name, and
# every name that only looks like it, is carol's revision for carol (issue #15).
CYRILLIC_A_CAROL = "c\u0430rol"
GREEK_OMICRON_CAROL = "car\u03bfl"


@pytest.mark.parametrize(
    "submitter",
    [
        "Carol",  # case
        "carol ",  # trailing space
        CYRILLIC_A_CAROL,  # a Cyrillic a: no principal can have it, an old event can
        GREEK_OMICRON_CAROL,  # a Greek omicron
        FULL_WIDTH_CAROL,  # full-width letters
        "caro1",  # an ASCII look-alike
        "carol-ops",  # her other principal
    ],
)
def test_a_revision_submitted_under_a_variant_of_a_name_is_that_persons_to_not_decide(
    submitter: str,
) -> None:
    with pytest.raises(Refused) as refused:
        decide(situation(submitter=submitter, persons=CAROL), ballot("carol"))
    assert refused.value.reason is Reason.SEPARATION_OF_DUTIES


@pytest.mark.parametrize("submitter", ["karol", "caroline", "dave"])
def test_a_submitter_who_does_not_look_like_the_approver_leaves_them_free_to_decide(
    submitter: str,
) -> None:
    verdict = decide(situation(submitter=submitter, persons=CAROL), ballot("carol"))
    assert verdict.outcome is Outcome.APPROVED
