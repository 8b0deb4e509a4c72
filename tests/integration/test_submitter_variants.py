"""A revision whose submitter is a variant of an approver's name (issue #15), through the
real approval service's HTTP API and PostgreSQL: `Carol`, `carol ` and `carol` spelt with
a Cyrillic a were approved by principal carol when duties compared raw strings; each is
carol's own revision for carol now, and another person still decides it. (One person under
two principals counting once is `test_identities.py`'s.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.test_approval_stack import (
    ApprovalStack,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
    assert_problem,
)

CYRILLIC_A_CAROL = "c\u0430rol"


@pytest.mark.parametrize("submitter", ["Carol", "carol ", CYRILLIC_A_CAROL])
async def test_carol_takes_no_decision_on_a_revision_submitted_under_a_variant_of_her_name(
    approval: ApprovalStack, unique: Callable[[str], str], submitter: str
) -> None:
    seeded = await approval.seed(unique("variant"), submitter=submitter)
    approval.wait_pending(seeded)

    with approval.client("carol") as carol:
        refused = carol.post(seeded.api_path + "/decisions", json=seeded.ballot())
    body = assert_problem(refused, 403, "separation-of-duties")
    assert "carol submitted this revision" in body["detail"]

    with approval.client("bob") as bob:
        decided = bob.post(seeded.api_path + "/decisions", json=seeded.ballot())
    assert decided.status_code == 200, decided.text
    assert decided.json()["outcome"] == "approved"
