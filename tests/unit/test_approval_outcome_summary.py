"""A ballot's answer says in words what it did (`recorded` alone left approvers guessing)."""

from __future__ import annotations

import pytest

from services.approval.api import outcome_summary


@pytest.mark.parametrize(
    ("outcome", "approvals", "required", "expected"),
    [
        ("recorded", 1, 2, "1 of 2 distinct approvals: 1 more needed from another person"),
        ("recorded", 1, 3, "1 of 3 distinct approvals: 2 more needed from another person"),
        ("approved", 2, 2, "approved (2 of 2): the activator rolls it out"),
        ("approved", 1, 1, "approved (1 of 1): the activator rolls it out"),
        ("denied", 0, 2, "denied: the revision will not be rolled out here"),
    ],
)
def test_outcome_summary(outcome: str, approvals: int, required: int, expected: str) -> None:
    assert outcome_summary(outcome, approvals, required) == expected
