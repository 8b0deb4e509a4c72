"""The corpus's bad requests against the approval service's real HTTP server, PostgreSQL
and Kafka (the stack of test_approval_stack.py): each is refused with its status and
RFC 9457 problem type, none is a server error, and none changes what awaits a decision."""

from __future__ import annotations

import httpx
import pytest

from tests.corpus.bad_inputs import Entry, load
from tests.corpus.bad_inputs.http_requests import build_request
from tests.integration.test_approval_stack import (
    PRODUCTION,
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
    assert_problem,
)

ENTRIES = load("http")


def _places_of(name: str, seeded: Seeded) -> dict[str, str]:
    return {
        name: seeded.api_path,
        f"{name}.adapter": seeded.adapter,
        f"{name}.revision": seeded.revision,
        f"{name}.manifest_digest": seeded.manifest_digest,
        f"{name}.report_digest": seeded.report_digest,
    }


@pytest.fixture(scope="module")
async def seeded(approval: ApprovalStack) -> dict[str, Seeded]:
    """A revision awaiting a decision, one already denied, one approved once of two."""
    token = approval.stack.token
    awaiting = await approval.seed(f"corpus-awaiting-{token}")
    decided = await approval.seed(f"corpus-decided-{token}")
    approved_once = await approval.evaluate_also_in(awaiting, PRODUCTION)
    for revision in (awaiting, decided, approved_once):
        approval.wait_pending(revision)
    with approval.client("carol") as client:
        denied = client.post(decided.api_path + "/decisions", json=decided.ballot("deny"))
        assert denied.json()["outcome"] == "denied", denied.text
    with approval.client("bob") as client:
        once = client.post(approved_once.api_path + "/decisions", json=approved_once.ballot())
        assert once.json()["outcome"] == "recorded", once.text
    return {"awaiting": awaiting, "decided": decided, "approved_once": approved_once}


@pytest.fixture(scope="module")
def places(approval: ApprovalStack, seeded: dict[str, Seeded]) -> dict[str, str]:
    revoked = approval.add_principal("rex", "approver")
    approval.stack.adapterctl("principal", "revoke", "rex", "--role", "approver")
    tokens = {f"{name}/{role}": token for (name, role), token in approval.tokens.items()}
    found = {k: v for name, s in seeded.items() for k, v in _places_of(name, s).items()}
    return {**tokens, "revoked": revoked, **found}


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_each_bad_request_is_refused_with_its_status_and_problem(
    approval: ApprovalStack, places: dict[str, str], entry: Entry
) -> None:
    request = build_request(entry.input, places)
    response = httpx.request(
        request.method,
        approval.base_url + request.path,
        headers=request.headers,
        content=request.content,
        timeout=30,
    )
    body = assert_problem(response, entry.expect["status"], entry.expect["problem"])
    assert entry.expect.get("detail", "") in body["detail"]


def test_no_bad_request_changed_what_awaits_a_decision(
    approval: ApprovalStack, seeded: dict[str, Seeded]
) -> None:
    with approval.client("audrey") as client:
        for name in ("awaiting", "approved_once"):
            revision = seeded[name]
            listed = client.get(f"/api/v1/environments/{revision.environment}/pending").json()
            mine = [r for r in listed["revisions"] if r["revision"] == revision.revision]
            assert [r["approvals"] for r in mine] == [[] if name == "awaiting" else ["bob"]]
        decided = client.get(seeded["decided"].api_path).json()
        assert decided["decision"]["decision"] == "denied"
    assert approval.stack.processes["approval"].poll() is None, approval.stack.log_of("approval")
