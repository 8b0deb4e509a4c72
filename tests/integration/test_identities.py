"""Canonical identities and persons (issue #15), on the real approval service, PostgreSQL
and adapterctl: a name that could pass for another is refused where principals are made,
a variant spelling is the same principal, and one person under two principals counts
once toward production's two approvals and is still the submitter."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from shared.events import RevisionApproved
from tests.integration.test_approval_stack import (
    PRODUCTION,
    SUBMITTER,
    ApprovalStack,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
    assert_problem,
)


def principal_add(
    approval: ApprovalStack, name: str, role: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return approval.stack.adapterctl(
        "principal", "add", name, "--role", role, "--json", *extra, check=False
    )


def test_names_that_could_pass_for_another_are_refused_where_principals_are_made(
    approval: ApprovalStack,
) -> None:
    for name, why in [
        ("c\u0430rol", "CYRILLIC"),  # Cyrillic a
        ("carol ", "leading or trailing spaces"),
        ("car0l", "looks like 'carol'"),  # carol is another person's approver
    ]:
        refused = principal_add(approval, name, "approver")
        assert refused.returncode == 2 and why in refused.stderr, (name, refused.stderr)
    listed = approval.stack.adapterctl("principal", "list", "--json").stdout
    assert "car0l" not in listed and "c\u0430rol" not in listed


async def test_a_variant_spelling_of_the_submitter_is_the_submitter(
    approval: ApprovalStack, unique: Callable[[str], str]
) -> None:
    """`Trainer-Alice` is trainer-alice: the approver token issued under it is hers, and
    she takes no decision on her own revision with it."""
    seeded = await approval.seed(unique("variant"), submitter=SUBMITTER)
    approval.wait_pending(seeded)
    issued = principal_add(approval, SUBMITTER.title(), "auditor")  # any role, same person
    assert issued.returncode == 0, issued.stderr
    made = json.loads(issued.stdout)
    assert (made["name"], made["person"]) == (SUBMITTER, SUBMITTER)
    with approval.client(SUBMITTER, "approver") as client:
        refused = client.post(seeded.api_path + "/decisions", json=seeded.ballot())
    assert_problem(refused, 403, "separation-of-duties")


async def test_one_person_under_two_principals_counts_once_toward_two_approvals(
    approval: ApprovalStack, unique: Callable[[str], str]
) -> None:
    second = unique("dave-2")
    issued = principal_add(approval, second, "approver", "--person", "dave")
    assert issued.returncode == 0, issued.stderr
    approval.tokens[(second, "approver")] = json.loads(issued.stdout)["token"]
    seeded = await approval.evaluate_also_in(await approval.seed(unique("two-hats")), PRODUCTION)
    approval.wait_pending(seeded)

    with approval.client("dave") as dave:
        first = dave.post(seeded.api_path + "/decisions", json=seeded.ballot(comment="fine"))
    assert first.json()["outcome"] == "recorded", first.text
    with approval.client(second, "approver") as dave_again:
        again = dave_again.post(seeded.api_path + "/decisions", json=seeded.ballot())
    body = assert_problem(again, 409, "already-approved")
    assert "dave" in body["detail"] and "more distinct person(s) needed" in body["detail"]
    with approval.client("carol") as carol:
        done = carol.post(seeded.api_path + "/decisions", json=seeded.ballot(comment="ok"))
    assert done.json()["outcome"] == "approved", done.text
    events = approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionApproved) for e in evs), adapter=seeded.adapter
    )
    [approved] = [e for e in events if isinstance(e, RevisionApproved)]
    assert approved.approvers == ["dave", "carol"]


async def test_a_ballot_withdrawn_before_the_decision_no_longer_counts(
    approval: ApprovalStack, unique: Callable[[str], str]
) -> None:
    seeded = await approval.evaluate_also_in(await approval.seed(unique("withdrawn")), PRODUCTION)
    approval.wait_pending(seeded)
    with approval.client("carol") as carol:
        assert carol.post(seeded.api_path + "/decisions", json=seeded.ballot()).status_code == 200
        taken_back = carol.delete(seeded.api_path + "/decisions/mine")
        assert taken_back.status_code == 200, taken_back.text
        assert_problem(carol.delete(seeded.api_path + "/decisions/mine"), 409, "no-ballot")
    with approval.client("bob") as bob:  # one approval of two: still recorded, not decided
        assert (
            bob.post(seeded.api_path + "/decisions", json=seeded.ballot()).json()["outcome"]
            == "recorded"
        )
    with approval.client("carol") as carol:
        done = carol.post(seeded.api_path + "/decisions", json=seeded.ballot())
        assert done.json()["outcome"] == "approved"
        assert_problem(carol.delete(seeded.api_path + "/decisions/mine"), 409, "already-decided")
