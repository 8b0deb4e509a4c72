"""Recording a ballot and, when it decides, committing the signed decision.

One transaction on the approval service's own tables holds a row lock on the evaluation,
so two approvers deciding on one revision at once are served one after the other. Inside
it the ballot is recorded and, when it is the deciding one, RevisionApproved or
RevisionDenied is signed and committed through the registry (its own transaction, with
compare-and-set on the revision's version). A ballot counts only while the environment
still serves the contract (base, tokenizer, chat template, quantization) the revision was
registered, validated and evaluated for; the decision signs that contract's digest. A
failed commit rolls the ballot back; should
the service die after the commit but before its own transaction ends, the event on the
log still names every approver and the projection records the decision from it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

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
from services.approval.ports import ApprovalReads, Evaluation
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.events import (
    Actor,
    RevisionApproved,
    RevisionDenied,
    RevisionRegistered,
    caused_envelope,
)
from shared.lifecycle import InvalidTransition, State
from shared.registry.port import Catalogue, ConcurrentTransition, Registry, Step
from shared.registry.principals import Persons, Principal
from shared.signing import APPROVED, DENIED, DecisionClaim, Signer

log = structlog.get_logger(__name__)


class UnknownTarget(Exception):
    """No such revision, or no such environment."""


class Conflict(Exception):
    """The registry moved the revision while this ballot was being decided."""


@dataclass(frozen=True, slots=True)
class Decider:
    registry: Registry
    readmodel: ApprovalReads
    catalogue: Catalogue
    signer: Signer
    persons: Persons  # who each principal name is (the registry's principals)
    # One ballot at a time per process: a ballot holds one pooled connection (the row lock)
    # while the registry's commit takes a second, so unbounded concurrent ballots could
    # exhaust the pool and wait on each other forever. Ballots are rare; other processes
    # are serialised by the row lock.
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class Decided:
    verdict: Verdict
    required_approvals: int
    event: RevisionApproved | RevisionDenied | None


async def cast(
    decider: Decider,
    principal: Principal,
    adapter: str,
    revision: str,
    environment: str,
    ballot: Ballot,
) -> Decided:
    """Record `ballot` by `principal`; UnknownTarget, Refused (from `decide`) or Conflict
    when it cannot count."""
    spec = await decider.catalogue.environment(environment)
    if spec is None:
        raise UnknownTarget(f"environment {environment!r} is not in the catalogue")
    required = max(1, spec.required_approvals)
    async with decider.serial:
        contract = await serving_contract(decider.registry, spec, adapter, revision)
        decided = await _cast(
            decider, principal, adapter, revision, environment, ballot, required, contract
        )
    log.info(
        "ballot_cast",
        adapter=adapter,
        revision=revision,
        environment=environment,
        principal=principal.name,
        choice=ballot.choice.value,
        outcome=decided.verdict.outcome.value,
        approvals=list(decided.verdict.approvers),
        required=required,
    )
    return decided


async def serving_contract(
    registry: Registry, spec: EnvironmentSpec, adapter: str, revision: str
) -> str:
    """The digest of the environment's serving contract, while the revision's registered
    contract still holds there; else Refused (stale), naming each term that changed."""
    registered = await registry.events(adapter, revision, types=(RevisionRegistered,))
    if not registered or not isinstance(registered[0], RevisionRegistered):
        raise UnknownTarget(f"adapter {adapter!r} has no registered revision {revision}")
    event = registered[0]
    trained_for = ServingContract(
        base_model_id=event.base_model.model_id,
        base_model_revision=event.base_model.revision,
        tokenizer_hash=event.tokenizer_hash,
        chat_template_hash=event.chat_template_hash,
        quantization_profile=event.quantization_profile,
    )
    serving = ServingContract.of_environment(spec)
    changed = trained_for.mismatches(serving)
    if changed:
        terms = "; ".join(f"{m.term.value} is {m.found}, not {m.wanted}" for m in changed)
        raise Refused(
            Reason.STALE_CONTRACT,
            f"{spec.name} changed since {revision} was evaluated for it ({terms}): the "
            "evaluation no longer holds there; re-validate and re-evaluate before deciding",
        )
    return serving.digest()


async def _cast(
    decider: Decider,
    principal: Principal,
    adapter: str,
    revision: str,
    environment: str,
    ballot: Ballot,
    required: int,
    contract: str,
) -> Decided:
    async with decider.readmodel.transaction() as box:
        evaluation = await box.evaluation(adapter, revision, environment)
        record = await decider.registry.revision(adapter, revision)
        if record is None:
            raise UnknownTarget(f"adapter {adapter!r} has no revision {revision}")
        ballots = await box.ballots(adapter, revision, environment)
        approvals = tuple(b.principal for b in ballots if b.decision is Choice.APPROVE)
        named = [principal.name, *approvals, *([record.submitter] if record.submitter else [])]
        persons = await decider.persons(named)
        persons[principal.name] = principal.who  # the token's own, even before it is listed
        situation = Situation(
            state=record.status.track(environment),
            revision_state=record.status.revision_track,
            submitter=record.submitter,
            manifest_digest=record.manifest_digest,
            report_digest=evaluation.report_digest if evaluation else None,
            required_approvals=required,
            approvals=approvals,
            persons=persons,
        )
        verdict = decide(situation, ballot)  # Refused propagates: nothing written
        assert evaluation is not None  # decide() refuses a ballot without an evaluation
        await box.cast_ballot(
            adapter,
            revision,
            environment,
            principal=principal.name,
            choice=ballot.choice,
            comment=ballot.comment,
            manifest_digest=ballot.manifest_digest,
            report_digest=ballot.report_digest,
        )
        event = None
        if verdict.final:
            comments = [(b.principal, b.comment) for b in ballots if b.decision is Choice.APPROVE]
            event = _decision_event(
                decider.signer, evaluation, principal, ballot, verdict, comments, contract
            )
            try:
                committed = await decider.registry.commit(
                    [Step(event, expected_version=record.version)]
                )
            except (ConcurrentTransition, InvalidTransition) as exc:
                raise Conflict(str(exc)) from exc
            sealed = committed.events[0] if committed.events else event
            assert isinstance(sealed, RevisionApproved | RevisionDenied)
            event = sealed
            await box.record_decision(event)
    return Decided(verdict=verdict, required_approvals=required, event=event)


async def withdraw(
    decider: Decider, principal: Principal, adapter: str, revision: str, environment: str
) -> None:
    """Take back `principal`'s ballot while the decision is not final; Refused when it is,
    or when they cast none."""
    async with decider.serial, decider.readmodel.transaction() as box:
        await box.evaluation(adapter, revision, environment)  # the same lock as a ballot
        record = await decider.registry.revision(adapter, revision)
        if record is None:
            raise UnknownTarget(f"adapter {adapter!r} has no revision {revision}")
        state = record.status.track(environment)
        if state is not State.EVALUATED:
            raise Refused(
                Reason.ALREADY_DECIDED,
                f"the decision is final (its track is {state or 'not started'}): "
                "a ballot can be withdrawn only before",
            )
        removed = await box.withdraw_ballot(
            adapter, revision, environment, principal=principal.name
        )
        if not removed:
            raise Refused(Reason.NO_BALLOT, f"{principal.name} has no ballot on {revision} here")
    log.info(
        "ballot_withdrawn",
        adapter=adapter,
        revision=revision,
        environment=environment,
        principal=principal.name,
    )


def _decision_event(
    signer: Signer,
    evaluation: Evaluation,
    principal: Principal,
    ballot: Ballot,
    verdict: Verdict,
    earlier_comments: list[tuple[str, str]],
    contract: str,
) -> RevisionApproved | RevisionDenied:
    approved = verdict.outcome is Outcome.APPROVED
    if approved:
        said = [*earlier_comments, (principal.name, ballot.comment)]
        comment = "\n".join(f"{who}: {text}" for who, text in said if text)
    else:
        comment = ballot.comment
    claim = DecisionClaim(
        adapter=evaluation.adapter,
        revision=evaluation.revision,
        environment=evaluation.environment,
        decision=APPROVED if approved else DENIED,
        manifest_digest=ballot.manifest_digest,
        report_digest=ballot.report_digest,
        approvers=verdict.approvers,
        comment=comment,
        serving_contract=contract,
    )
    kind = "RevisionApproved" if approved else "RevisionDenied"
    envelope = caused_envelope(
        cause_id=evaluation.event_id,
        correlation_id=evaluation.correlation_id,
        adapter=evaluation.adapter,
        revision=evaluation.revision,
        environment=evaluation.environment,
        event_type=kind,
        actor=Actor(principal=principal.name, role=principal.role.value),
        occurred_at=datetime.now(UTC),
    )
    signature, key_id = signer.sign(claim), signer.key_id
    if approved:
        return RevisionApproved(
            envelope=envelope,
            manifest_digest=claim.manifest_digest,
            report_digest=claim.report_digest,
            comment=comment,
            approvers=list(verdict.approvers),
            signature=signature,
            key_id=key_id,
            serving_contract=contract,
        )
    return RevisionDenied(
        envelope=envelope,
        manifest_digest=claim.manifest_digest,
        report_digest=claim.report_digest,
        comment=comment,
        signature=signature,
        key_id=key_id,
        serving_contract=contract,
    )
