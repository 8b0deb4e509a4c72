"""The JSON API: what awaits approval, one revision's evidence, and recording a decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from services.approval.auth import api_role, refuse_foreign_origin
from services.approval.deciding import Conflict, UnknownTarget, cast, withdraw
from services.approval.decisions import Ballot, Choice, Reason, Refused
from services.approval.deps import WebDeps, web_deps
from services.approval.evidence import gates_passed, gather
from services.approval.problems import ApiProblem, documented
from services.approval.views import (
    ADAPTER,
    DIGEST,
    ENVIRONMENT,
    DecisionOutcome,
    DecisionRequest,
    Evidence,
    Me,
    PendingList,
    PendingRevision,
    SigningKey,
    Withdrawn,
)
from shared.registry.principals import Principal
from shared.signing import public_pem

router = APIRouter(
    prefix="/api/v1", tags=["approval"], dependencies=[Depends(refuse_foreign_origin)]
)

Deps = Annotated[WebDeps, Depends(web_deps)]
EnvironmentName = Annotated[str, Path(pattern=ENVIRONMENT, examples=["production"])]
AdapterName = Annotated[str, Path(pattern=ADAPTER, examples=["support-summarizer"])]
RevisionId = Annotated[str, Path(pattern=DIGEST, description="the revision's content digest")]


async def pending_list(deps: WebDeps, environment: str) -> PendingList:
    spec = await deps.catalogue.environment(environment)
    if spec is None:
        raise ApiProblem(404, "not-found", f"environment {environment!r} is not in the catalogue")
    rows = await deps.readmodel.pending(environment)
    return PendingList(
        environment=environment,
        revisions=[
            PendingRevision(
                adapter=p.evaluation.adapter,
                revision=p.evaluation.revision,
                environment=environment,
                submitter=p.submitter,
                manifest_digest=p.manifest_digest,
                report_digest=p.evaluation.report_digest,
                baseline_revision=p.evaluation.baseline_revision,
                evaluated_at=p.evaluation.evaluated_at,
                gates_passed=gates_passed(p.evaluation),
                approvals=list(p.approvals),
                required_approvals=max(1, spec.required_approvals),
            )
            for p in rows
        ],
    )


async def evidence_of(deps: WebDeps, environment: str, adapter: str, revision: str) -> Evidence:
    found = await gather(deps.sources, adapter, revision, environment)
    if found is None:
        raise ApiProblem(
            404, "not-found", f"no evaluation of {adapter}@{revision} in {environment} is known"
        )
    return found


async def record_decision(
    deps: WebDeps,
    principal: Principal,
    environment: str,
    adapter: str,
    revision: str,
    request: DecisionRequest,
) -> DecisionOutcome:
    ballot = Ballot(
        principal=principal.name,
        choice=Choice(request.decision),
        manifest_digest=request.manifest_digest,
        report_digest=request.report_digest,
        comment=request.comment,
    )
    try:
        decided = await cast(deps.decider, principal, adapter, revision, environment, ballot)
    except UnknownTarget as exc:
        raise ApiProblem(404, "not-found", str(exc)) from exc
    except Refused as exc:
        status = 403 if exc.reason is Reason.SEPARATION_OF_DUTIES else 409
        raise ApiProblem(status, exc.reason.value, exc.message) from exc
    except Conflict as exc:
        raise ApiProblem(409, "conflict", f"{exc}; reload the evidence and decide again") from exc
    approvals = decided.verdict.approvers if ballot.choice is Choice.APPROVE else ()
    return DecisionOutcome(
        outcome=decided.verdict.outcome.value,
        summary=outcome_summary(
            decided.verdict.outcome.value, len(approvals), decided.required_approvals
        ),
        adapter=adapter,
        revision=revision,
        environment=environment,
        approvals=list(approvals),
        required_approvals=decided.required_approvals,
        event_id=decided.event.envelope.event_id if decided.event else None,
        key_id=decided.event.key_id if decided.event else None,
    )


def outcome_summary(outcome: str, approvals: int, required: int) -> str:
    """What a ballot did, in words: `1 of 2 distinct approvals: 1 more needed`."""
    if outcome == "recorded":
        missing = required - approvals
        return (
            f"{approvals} of {required} distinct approvals: {missing} more needed "
            "from another person"
        )
    if outcome == "approved":
        return f"approved ({approvals} of {required}): the activator rolls it out"
    return "denied: the revision will not be rolled out here"


@router.get("/me", response_model=Me, responses=documented(401, 403))
async def me(principal: Annotated[Principal, Depends(api_role("me"))]) -> Me:
    """Who the token belongs to, and in which role it acts."""
    return Me(name=principal.name, role=principal.role.value)


@router.get("/signing-key", response_model=SigningKey, responses=documented(401, 403))
async def signing_key(
    deps: Deps, _principal: Annotated[Principal, Depends(api_role("signing_key"))]
) -> SigningKey:
    """The public key decisions are signed with, for `adapterctl audit verify --public-key`."""
    pem = public_pem(deps.signer.public_key).decode()
    return SigningKey(key_id=deps.signer.key_id, public_key_pem=pem)


@router.get(
    "/environments/{environment}/pending",
    response_model=PendingList,
    responses=documented(401, 403, 404, 422),
)
async def pending(
    environment: EnvironmentName,
    deps: Deps,
    _principal: Annotated[Principal, Depends(api_role("pending"))],
) -> PendingList:
    """Revisions evaluated in the environment and not yet approved or denied, oldest first."""
    return await pending_list(deps, environment)


@router.get(
    "/environments/{environment}/revisions/{adapter}/{revision}",
    response_model=Evidence,
    responses=documented(401, 403, 404, 422),
)
async def evidence(
    environment: EnvironmentName,
    adapter: AdapterName,
    revision: RevisionId,
    deps: Deps,
    _principal: Annotated[Principal, Depends(api_role("evidence"))],
) -> Evidence:
    """The evidence for one revision in one environment, beside the revision serving it when
    it was evaluated; a failed evaluation too (`outcome` says which), read-only."""
    return await evidence_of(deps, environment, adapter, revision)


@router.post(
    "/environments/{environment}/revisions/{adapter}/{revision}/decisions",
    response_model=DecisionOutcome,
    responses=documented(401, 403, 404, 409, 413, 415, 422),
)
async def decide(
    environment: EnvironmentName,
    adapter: AdapterName,
    revision: RevisionId,
    body: DecisionRequest,
    deps: Deps,
    principal: Annotated[Principal, Depends(api_role("decide"))],
) -> DecisionOutcome:
    """Approve or deny, naming the manifest and report digests the decision is made on.

    A denial decides at once. An approval is recorded; the one that brings the distinct
    approvers to the environment's `required_approvals` commits RevisionApproved, signed,
    naming them all. The revision's submitter may do neither.
    """
    return await record_decision(deps, principal, environment, adapter, revision, body)


@router.delete(
    "/environments/{environment}/revisions/{adapter}/{revision}/decisions/mine",
    response_model=Withdrawn,
    responses=documented(401, 403, 404, 409, 422),
)
async def withdraw_ballot(
    environment: EnvironmentName,
    adapter: AdapterName,
    revision: RevisionId,
    deps: Deps,
    principal: Annotated[Principal, Depends(api_role("decide"))],
) -> Withdrawn:
    """Take back your ballot while the decision is not final (409 once it is, or when you
    cast none)."""
    await withdraw_decision(deps, principal, environment, adapter, revision)
    return Withdrawn(adapter=adapter, revision=revision, environment=environment)


async def withdraw_decision(
    deps: WebDeps, principal: Principal, environment: str, adapter: str, revision: str
) -> None:
    try:
        await withdraw(deps.decider, principal, adapter, revision, environment)
    except UnknownTarget as exc:
        raise ApiProblem(404, "not-found", str(exc)) from exc
    except Refused as exc:
        raise ApiProblem(409, exc.reason.value, exc.message) from exc
