"""Separation of duties and the decision rules, over the approval service's real HTTP
server, PostgreSQL and Kafka: the submitter cannot approve, N distinct approvals, decisions
bound to their evidence, one decision however many decide at once, precise refusals."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared.events import RevisionApproved, RevisionDenied
from tests.integration.test_approval_stack import (
    PRODUCTION,
    STAGING,
    STALE,
    SUBMITTER,
    ApprovalStack,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
    assert_problem,
)


async def test_the_submitter_cannot_approve_their_own_revision_even_as_an_approver(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("own"), submitter=SUBMITTER)
    approval.wait_pending(seeded)
    with approval.client(SUBMITTER, "approver") as client:
        refused = client.post(seeded.api_path + "/decisions", json=seeded.ballot())
        denied = client.post(seeded.api_path + "/decisions", json=seeded.ballot("deny"))
    body = assert_problem(refused, 403, "separation-of-duties")
    assert SUBMITTER in body["detail"]
    assert_problem(denied, 403, "separation-of-duties")
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
        "summary": "1 of 2 distinct approvals: 1 more needed from another person",
        "adapter": seeded.adapter,
        "revision": seeded.revision,
        "environment": PRODUCTION,
        "approvals": ["bob"],
        "required_approvals": 2,
        "event_id": None,
        "key_id": None,
    }
    assert_problem(again, 409, "already-approved")
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


async def test_approvers_deciding_at_the_same_moment_yield_exactly_one_decision(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    seeded = await approval.seed(unique("race"), PRODUCTION)
    approval.wait_pending(seeded)

    def approve(name: str) -> httpx.Response:
        with approval.client(name) as client:
            return client.post(seeded.api_path + "/decisions", json=seeded.ballot())

    with ThreadPoolExecutor(max_workers=3) as pool:
        responses = list(pool.map(approve, ["bob", "carol", "dave"]))
    outcomes = sorted(
        r.json()["outcome"] if r.status_code == 200 else r.json()["type"].rsplit(":", 1)[1]
        for r in responses
    )
    assert outcomes == ["already-decided", "approved", "recorded"]
    approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionApproved) for e in evs), adapter=seeded.adapter
    )
    approvals = [e for e in approval.events_of(seeded.adapter) if isinstance(e, RevisionApproved)]
    assert len(approvals) == 1 and len(approvals[0].approvers) == 2


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
    assert STALE in assert_problem(old_report, 409, "stale-evidence")["detail"]
    assert "manifest" in assert_problem(old_manifest, 409, "stale-evidence")["detail"]
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
    assert_problem(late, 409, "already-decided")
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
    assert list(metrics) == ["accuracy", "latency_p95_ms", "no_op_rate", "tokens_per_s"]
    assert metrics["accuracy"]["delta"] == pytest.approx(0.08)
    assert metrics["no_op_rate"]["baseline"] is None and metrics["no_op_rate"]["delta"] is None
    assert metrics["tokens_per_s"]["gated"] is False
    assert metrics["tokens_per_s"]["delta"] == pytest.approx(-2.5)
    changed = evidence["changed_outputs"]
    assert [(o["id"], o["reference"], o["baseline"]) for o in changed] == [
        ("q1", "baseline", "Printer jam.")
    ]
    assert changed[0]["prompt"] == "user: Summarise ticket 812"
    assert evidence["unchanged_outputs"] == 1
    assert evidence["manifest"]["base_model_id"] == "tiny-llama"
    assert evidence["recipe"]["dataset_ids"] == ["tickets-q3"]
    assert evidence["data_scope"]["corpora"] == ["support-tickets"]
    assert [f["code"] for f in evidence["findings"]] == ["rank_padded"]
    assert evidence["submitter"] == SUBMITTER and evidence["evidence_problems"] == []


async def test_unknown_targets_answer_404_and_malformed_ones_422(
    approval: ApprovalStack,
    unique: Callable[[str], str],
) -> None:
    matrix_revision = await approval.seed(unique("malformed"))
    approval.wait_pending(matrix_revision)
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
    assert_problem(no_revision, 404, "not-found")
    assert_problem(no_environment, 404, "not-found")
    assert_problem(decide_unknown, 404, "not-found")
    assert assert_problem(bad_path, 422, "invalid-request")["errors"][0]["location"] == [
        "path",
        "revision",
    ]
    locations = {
        tuple(e["location"]) for e in assert_problem(bad_body, 422, "invalid-request")["errors"]
    }
    assert {("body", "decision"), ("body", "extra")} <= locations
    assert_problem(nul_comment, 422, "invalid-request")
