"""The approval service over its real HTTP server, real PostgreSQL and real Kafka: who may
call what, separation of duties, N distinct approvals, decisions bound to their evidence,
and one problem format for every refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.events import RevisionApproved, RevisionDenied
from tests.integration.test_approval_stack import (
    AS_ROLE,
    PRODUCTION,
    ROLES,
    STAGING,
    SUBMITTER,
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)

PROBLEM = "application/problem+json"
STALE = "sha256:" + "0" * 64
READERS = {"approver", "operator", "auditor", "admin"}

# What each role may do, written out here rather than read from the service's own table,
# so a change to the service's policy must be a change to this test too.
API_MATRIX: list[tuple[str, str, str, set[str], int]] = [
    # (name, method, path template, roles allowed, status when allowed)
    ("me", "GET", "/api/v1/me", set(ROLES), 200),
    ("signing key", "GET", "/api/v1/signing-key", set(ROLES), 200),
    ("pending", "GET", "/api/v1/environments/staging/pending", READERS, 200),
    ("evidence", "GET", "{api}", READERS, 200),
    ("decide (on stale evidence)", "POST", "{api}/decisions", {"approver"}, 409),
]
PAGE_MATRIX: list[tuple[str, str, str, set[str], int]] = [
    ("pending page", "GET", "/", READERS, 200),
    ("revision page", "GET", "{page}", READERS, 200),
    ("decision form (on stale evidence)", "POST", "{page}/decision", {"approver"}, 409),
]


@pytest.fixture(scope="module")
async def matrix_revision(approval: ApprovalStack) -> Seeded:
    seeded = await approval.seed(f"matrix-{approval.stack.token}")
    approval.wait_pending(seeded)
    return seeded


def _call(
    client: httpx.Client, method: str, template: str, seeded: Seeded, *, form: bool = False
) -> httpx.Response:
    path = template.format(api=seeded.api_path, page=seeded.page_path)
    if method == "GET":
        return client.get(path)
    ballot = seeded.ballot(report_digest=STALE)
    return client.post(path, data=ballot) if form else client.post(path, json=ballot)


def _assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:adapters:problem:{slug}", body
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    return body


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), API_MATRIX)
def test_every_api_operation_answers_each_role_as_the_policy_says(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    role: str,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    with approval.client(*AS_ROLE[role]) as client:
        response = _call(client, method, template, matrix_revision)
    if role in allowed:
        assert response.status_code == status, f"{name} as {role}: {response.text}"
    else:
        _assert_problem(response, 403, "forbidden-role")


@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), API_MATRIX)
@pytest.mark.parametrize("credentials", ["none", "unknown token", "basic auth"])
def test_every_api_operation_answers_401_to_a_caller_without_a_valid_token(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    credentials: str,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    headers = {
        "none": {},
        "unknown token": {"Authorization": "Bearer apt_not-a-real-token"},
        "basic auth": {"Authorization": "Basic Ym9iOmJvYg=="},
    }[credentials]
    with httpx.Client(base_url=approval.base_url, headers=headers) as client:
        response = _call(client, method, template, matrix_revision)
    _assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_anonymous_caller_gets_401_before_its_malformed_body_is_even_read(
    approval: ApprovalStack,
    matrix_revision: Seeded,
) -> None:
    with httpx.Client(base_url=approval.base_url) as client:
        response = client.post(
            matrix_revision.api_path + "/decisions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    _assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), PAGE_MATRIX)
def test_every_page_answers_each_role_as_the_policy_says(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    role: str,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    token = approval.token(*AS_ROLE[role])
    with httpx.Client(base_url=approval.base_url, cookies={"approval_session": token}) as client:
        response = _call(client, method, template, matrix_revision, form=True)
    expected = status if role in allowed else 403
    assert response.status_code == expected, f"{name} as {role}: {response.text[:300]}"
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), PAGE_MATRIX)
def test_every_page_sends_a_visitor_without_a_session_to_the_login_form(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    with httpx.Client(base_url=approval.base_url) as client:
        response = _call(client, method, template, matrix_revision, form=True)
    assert (response.status_code, response.headers["location"]) == (303, "/login"), name


def test_logging_in_sets_an_http_only_strict_cookie_and_a_bad_token_is_refused(
    approval: ApprovalStack,
) -> None:
    with httpx.Client(base_url=approval.base_url) as client:
        refused = client.post("/login", data={"token": "apt_wrong"})
        accepted = client.post("/login", data={"token": approval.token("bob", "approver")})
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    cookie = accepted.headers["set-cookie"].lower()
    assert "approval_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_a_form_posted_from_another_origin_is_refused(
    approval: ApprovalStack,
    matrix_revision: Seeded,
) -> None:
    token = approval.token("bob", "approver")
    with httpx.Client(base_url=approval.base_url, cookies={"approval_session": token}) as client:
        response = client.post(
            matrix_revision.page_path + "/decision",
            data=matrix_revision.ballot(),
            headers={"Origin": "http://evil.example"},
        )
    assert response.status_code == 403 and "evil.example" in response.text


def test_a_revoked_token_is_refused_from_then_on(approval: ApprovalStack) -> None:
    approval.add_principal("rita", "auditor")
    with approval.client("rita", "auditor") as client:
        assert client.get("/api/v1/me").json() == {"name": "rita", "role": "auditor"}
        approval.stack.adapterctl("principal", "revoke", "rita")
        _assert_problem(client.get("/api/v1/me"), 401, "unauthenticated")
    listed = approval.stack.adapterctl("principal", "list").stdout
    assert "rita" in listed and "auditor" in listed


def test_the_principal_list_never_shows_a_token(approval: ApprovalStack) -> None:
    listed = approval.stack.adapterctl("principal", "list", "--json").stdout
    assert all(token not in listed for token in approval.tokens.values())
    assert "token" not in listed


async def test_the_submitter_cannot_approve_their_own_revision_even_as_an_approver(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("own"), submitter=SUBMITTER)
    approval.wait_pending(seeded)
    with approval.client(SUBMITTER, "approver") as client:
        refused = client.post(seeded.api_path + "/decisions", json=seeded.ballot())
        denied = client.post(seeded.api_path + "/decisions", json=seeded.ballot("deny"))
    body = _assert_problem(refused, 403, "separation-of-duties")
    assert SUBMITTER in body["detail"]
    _assert_problem(denied, 403, "separation-of-duties")
    with approval.client("bob") as client:
        assert (
            client.post(seeded.api_path + "/decisions", json=seeded.ballot()).json()["outcome"]
            == "approved"
        )


async def test_production_needs_two_distinct_approvers_and_the_event_names_both(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("twice"), PRODUCTION)
    approval.wait_pending(seeded)
    path = seeded.api_path + "/decisions"
    with approval.client("bob") as bob, approval.client("carol") as carol:
        first = bob.post(path, json=seeded.ballot(comment="metrics hold"))
        again = bob.post(path, json=seeded.ballot(comment="still fine"))
        pending = bob.get(f"/api/v1/environments/{PRODUCTION}/pending").json()["revisions"]
        second = carol.post(path, json=seeded.ballot(comment="outputs read well"))
        evidence = carol.get(seeded.api_path).json()
    assert first.status_code == 200, first.text
    assert first.json() | {"event_id": None} == {
        "outcome": "recorded",
        "adapter": seeded.adapter,
        "revision": seeded.revision,
        "environment": PRODUCTION,
        "approvals": ["bob"],
        "required_approvals": 2,
        "event_id": None,
        "key_id": None,
    }
    _assert_problem(again, 409, "already-approved")
    assert [r["approvals"] for r in pending if r["revision"] == seeded.revision] == [["bob"]]
    assert second.json()["outcome"] == "approved" and second.json()["approvals"] == ["bob", "carol"]

    events = approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionApproved) for e in evs), adapter=seeded.adapter
    )
    approved = next(e for e in events if isinstance(e, RevisionApproved))
    assert approved.approvers == ["bob", "carol"]
    assert approved.envelope.actor.principal == "carol"
    assert approved.envelope.event_id == second.json()["event_id"]
    assert approved.comment == "bob: metrics hold\ncarol: outputs read well"
    assert (approved.manifest_digest, approved.report_digest) == (
        seeded.manifest_digest,
        seeded.report_digest,
    )
    assert evidence["state"] == "approved"
    assert evidence["decision"]["approvers"] == ["bob", "carol"]


async def test_an_approver_of_a_revision_may_not_operate_it_where_the_policy_says_so(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("operate"), PRODUCTION)
    in_staging = await approval.evaluate_also_in(seeded, STAGING)
    approval.wait_pending(seeded)
    approval.wait_pending(in_staging)
    with approval.client("bob") as bob, approval.client("carol") as carol:
        bob.post(seeded.api_path + "/decisions", json=seeded.ballot())
        assert carol.post(seeded.api_path + "/decisions", json=seeded.ballot()).status_code == 200
        assert (
            bob.post(in_staging.api_path + "/decisions", json=in_staging.ballot()).json()["outcome"]
            == "approved"
        )

    async def may(environment: str, operator: str) -> bool:
        return bool(
            await approval.registry.pool.fetchval(
                "SELECT approval_may_operate($1, $2, $3, $4)",
                seeded.adapter,
                seeded.revision,
                environment,
                operator,
            )
        )

    assert not await may(PRODUCTION, "bob")  # production: approver_may_operate false
    assert not await may(PRODUCTION, "carol")
    assert await may(PRODUCTION, "olga")
    assert await may(STAGING, "bob")  # staging allows it


async def test_a_decision_on_another_manifest_or_report_than_the_current_one_is_refused(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("stale"))
    approval.wait_pending(seeded)
    path = seeded.api_path + "/decisions"
    with approval.client("bob") as client:
        old_report = client.post(path, json=seeded.ballot(report_digest=STALE))
        old_manifest = client.post(path, json=seeded.ballot(manifest_digest=STALE))
        evidence = client.get(seeded.api_path).json()
    assert STALE in _assert_problem(old_report, 409, "stale-evidence")["detail"]
    assert "manifest" in _assert_problem(old_manifest, 409, "stale-evidence")["detail"]
    assert evidence["state"] == "evaluated" and evidence["ballots"] == []


async def test_one_denial_decides_and_a_later_ballot_finds_the_decision_taken(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("deny"), PRODUCTION)
    approval.wait_pending(seeded)
    path = seeded.api_path + "/decisions"
    with approval.client("dave") as dave, approval.client("bob") as bob:
        denied = dave.post(path, json=seeded.ballot("deny", "latency regressed"))
        late = bob.post(path, json=seeded.ballot())
    assert denied.json()["outcome"] == "denied" and denied.json()["event_id"]
    _assert_problem(late, 409, "already-decided")
    events = approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionDenied) for e in evs), adapter=seeded.adapter
    )
    denial = next(e for e in events if isinstance(e, RevisionDenied))
    assert (denial.envelope.actor.principal, denial.comment) == ("dave", "latency regressed")


async def test_the_evidence_compares_the_candidate_with_its_baseline(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("evidence"))
    approval.wait_pending(seeded)
    with approval.client("audrey") as client:
        evidence = client.get(seeded.api_path).json()
    metrics = {m["name"]: m for m in evidence["metrics"]}
    assert metrics["accuracy"]["delta"] == pytest.approx(0.08)
    assert metrics["no_op_rate"]["baseline"] is None and metrics["no_op_rate"]["delta"] is None
    assert [o["id"] for o in evidence["changed_outputs"]] == ["q1"]
    assert evidence["unchanged_outputs"] == 1
    assert evidence["manifest"]["base_model_id"] == "tiny-llama"
    assert evidence["recipe"]["dataset_ids"] == ["tickets-q3"]
    assert evidence["data_scope"]["corpora"] == ["support-tickets"]
    assert [f["code"] for f in evidence["findings"]] == ["rank_padded"]
    assert evidence["submitter"] == SUBMITTER and evidence["evidence_problems"] == []


async def test_unknown_targets_answer_404_and_malformed_ones_422(
    approval: ApprovalStack,
    matrix_revision: Seeded,
) -> None:
    unknown = "sha256:" + "f" * 64
    with approval.client("bob") as client:
        no_revision = client.get(
            matrix_revision.api_path.replace(matrix_revision.revision, unknown)
        )
        no_environment = client.get("/api/v1/environments/nowhere/pending")
        decide_unknown = client.post(
            f"/api/v1/environments/{STAGING}/revisions/ghost/{unknown}/decisions",
            json=matrix_revision.ballot(),
        )
        bad_path = client.get(f"/api/v1/environments/{STAGING}/revisions/x/not-a-digest")
        bad_body = client.post(
            matrix_revision.api_path + "/decisions",
            json={**matrix_revision.ballot(), "decision": "maybe", "extra": 1},
        )
        nul_comment = client.post(
            matrix_revision.api_path + "/decisions", json=matrix_revision.ballot(comment="a\x00b")
        )
    _assert_problem(no_revision, 404, "not-found")
    _assert_problem(no_environment, 404, "not-found")
    _assert_problem(decide_unknown, 404, "not-found")
    assert _assert_problem(bad_path, 422, "invalid-request")["errors"][0]["location"] == [
        "path",
        "revision",
    ]
    locations = {
        tuple(e["location"]) for e in _assert_problem(bad_body, 422, "invalid-request")["errors"]
    }
    assert {("body", "decision"), ("body", "extra")} <= locations
    _assert_problem(nul_comment, 422, "invalid-request")
