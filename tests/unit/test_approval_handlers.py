"""The approval service's handlers and its ballot, against the in-memory registry and read
model: what each lifecycle event projects, that a redelivery changes nothing, and what a
ballot commits to the registry or why it is refused."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.approval.deciding import Conflict, Decider, UnknownTarget, cast, withdraw
from services.approval.decisions import Ballot, Choice, Outcome, Reason, Refused
from services.approval.handlers import FLOW
from services.approval.projection import believer, handlers
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.decisions import ConflictingDecision, UntrustedDecision
from shared.events import (
    Actor,
    MetricResult,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.kafka.dispatch import Handler
from shared.lifecycle import State
from shared.registry.memory import InMemoryCatalogue, InMemoryRegistry
from shared.registry.port import Committed, Step
from shared.registry.principals import Principal, Role
from shared.signing import APPROVED, DENIED, Signer, check_signature, claim_of, keyring
from tests.factories import TEST_SIGNER, lifecycle
from tests.fakes.approval import InMemoryApprovalStore, persons_of
from tests.samples import sample

ADAPTER, REVISION, ENV = "chat", "sha256:" + "a" * 64, "prod"
SUBMITTER = "trainer-7@example.internal"  # the samples' submitter
# One person, two principals: carol approves as `carol` and operates as `carol-ops`.
PERSONS = {"carol-ops": "carol", "carol-2": "carol"}
_TRAINED_FOR: RevisionRegistered = sample(RevisionRegistered)  # what `lifecycle` registers
SPEC = EnvironmentSpec(
    name=ENV,
    base_model_id=_TRAINED_FOR.base_model.model_id,
    base_model_revision=_TRAINED_FOR.base_model.revision,
    tokenizer_hash=_TRAINED_FOR.tokenizer_hash,
    chat_template_hash=_TRAINED_FOR.chat_template_hash,
    quantization_profile=_TRAINED_FOR.quantization_profile,
    required_approvals=2,
)


@dataclasses.dataclass
class World:
    registry: InMemoryRegistry
    store: InMemoryApprovalStore
    handlers: dict[type, Handler]
    decider: Decider

    async def deliver(self, event: Any) -> None:
        """Commit `event` to the registry and hand the sealed one to its handler."""
        committed = await self.registry.transition(event)
        await self.handlers[type(event)](committed.events[0])

    def ballot(self, principal: str, choice: Choice = Choice.APPROVE, **fields: Any) -> Ballot:
        values: dict[str, Any] = {
            "manifest_digest": self.registered.manifest_digest,
            "report_digest": self.evaluated.report_digest,
            "comment": f"{principal} looked",
        }
        return Ballot(principal=principal, choice=choice, **(values | fields))

    registered: RevisionRegistered = dataclasses.field(init=False)
    evaluated: RevisionEvaluated = dataclasses.field(init=False)


def world(registry: InMemoryRegistry | None = None) -> World:
    registry = registry or InMemoryRegistry()
    store = InMemoryApprovalStore(registry)
    signer = Signer(Ed25519PrivateKey.generate())
    catalogue = InMemoryCatalogue(environments=[SPEC])
    decider = Decider(
        registry=registry,
        readmodel=store,
        catalogue=catalogue,
        signer=signer,
        persons=persons_of(PERSONS),
    )
    # The service trusts its own key and the tests' (what `lifecycle` signs decisions with).
    believe = believer(registry, lambda: keyring([signer.public_key, TEST_SIGNER.public_key]))
    return World(registry, store, handlers(store, believe), decider)


async def evaluated(w: World) -> World:
    """`ADAPTER@REVISION` registered, validated and evaluated in ENV, each projected."""
    w.registered = lifecycle(RevisionRegistered, ADAPTER, REVISION)
    w.evaluated = lifecycle(RevisionEvaluated, ADAPTER, REVISION, ENV)
    for event in (w.registered, lifecycle(RevisionValidated, ADAPTER, REVISION), w.evaluated):
        await w.deliver(event)
    return w


def approver(name: str) -> Principal:
    return Principal(name=name, role=Role.APPROVER)


# The handlers: one per projected event type.


def test_the_handler_map_covers_every_event_the_flow_says_it_handles() -> None:
    store = InMemoryApprovalStore(InMemoryRegistry())
    assert set(handlers(store, believer(store.registry, dict))) == set(FLOW.handles)


async def test_a_registered_revision_is_projected_as_a_submission() -> None:
    w = world()
    event = lifecycle(RevisionRegistered, ADAPTER, REVISION)
    await w.deliver(event)
    found = await w.store.submission(ADAPTER, REVISION)
    assert found is not None
    assert (found.manifest_digest, found.manifest_uri, found.submitter, found.findings) == (
        event.manifest_digest,
        event.manifest_uri,
        SUBMITTER,
        (),
    )
    assert not await w.store.project(event), "it is in the read model's own inbox"


async def test_a_redelivered_registration_changes_nothing() -> None:
    w = world()
    event = lifecycle(RevisionRegistered, ADAPTER, REVISION)
    await w.deliver(event)
    before = await w.store.submission(ADAPTER, REVISION)
    redelivered = dataclasses.replace(event, manifest_uri="file:///elsewhere")  # same event id
    assert not await w.store.project(redelivered)
    assert await w.store.submission(ADAPTER, REVISION) == before


async def test_a_second_registration_of_one_revision_keeps_the_first_submission() -> None:
    w = world()
    await w.deliver(lifecycle(RevisionRegistered, ADAPTER, REVISION))
    other = lifecycle(RevisionRegistered, ADAPTER, REVISION, submitter="mallory")
    assert await w.store.project(other)
    found = await w.store.submission(ADAPTER, REVISION)
    assert found is not None and found.submitter == SUBMITTER


async def test_a_validated_revision_carries_the_validators_findings() -> None:
    w = world()
    await w.deliver(lifecycle(RevisionRegistered, ADAPTER, REVISION))
    validated = lifecycle(RevisionValidated, ADAPTER, REVISION)
    await w.deliver(validated)
    found = await w.store.submission(ADAPTER, REVISION)
    assert found is not None and found.findings == tuple(validated.findings)
    assert found.findings  # the samples carry findings, so the test can fail


async def test_a_redelivered_validation_changes_nothing() -> None:
    w = world()
    await w.deliver(lifecycle(RevisionRegistered, ADAPTER, REVISION))
    validated = lifecycle(RevisionValidated, ADAPTER, REVISION)
    await w.deliver(validated)
    assert not await w.store.project(dataclasses.replace(validated, findings=[]))
    found = await w.store.submission(ADAPTER, REVISION)
    assert found is not None and found.findings == tuple(validated.findings)


async def test_a_validation_of_a_revision_never_registered_writes_nothing() -> None:
    w = world()
    assert await w.store.project(lifecycle(RevisionValidated, ADAPTER, REVISION))
    assert await w.store.submission(ADAPTER, REVISION) is None


async def test_an_evaluated_revision_awaits_a_decision_with_unmeasured_metrics_as_none() -> None:
    w = world()
    await w.deliver(lifecycle(RevisionRegistered, ADAPTER, REVISION))
    await w.deliver(lifecycle(RevisionValidated, ADAPTER, REVISION))
    unmeasured = MetricResult(name="bleu", value=math.nan, threshold=">= 0.1", passed=False)
    event = lifecycle(RevisionEvaluated, ADAPTER, REVISION, ENV)
    event = dataclasses.replace(event, metrics=[*event.metrics, unmeasured])
    await w.deliver(event)
    [pending] = await w.store.pending(ENV)
    assert (pending.evaluation.report_digest, pending.submitter, pending.approvals) == (
        event.report_digest,
        SUBMITTER,
        (),
    )
    assert pending.evaluation.event_id == event.envelope.event_id
    bleu = next(m for m in pending.evaluation.metrics if m.name == "bleu")
    assert bleu.value is None
    assert await w.store.pending("staging") == []


async def test_a_redelivered_evaluation_changes_nothing() -> None:
    w = await evaluated(world())
    before = await w.store.evaluation(ADAPTER, REVISION, ENV)
    again = dataclasses.replace(w.evaluated, report_digest="sha256:" + "0" * 64)
    assert not await w.store.project(again)
    assert await w.store.evaluation(ADAPTER, REVISION, ENV) == before


async def test_a_second_evaluation_in_one_environment_keeps_the_first() -> None:
    w = await evaluated(world())
    other = lifecycle(RevisionEvaluated, ADAPTER, REVISION, ENV, report_digest="sha256:" + "0" * 64)
    assert await w.store.project(other)
    found = await w.store.evaluation(ADAPTER, REVISION, ENV)
    assert found is not None and found.report_digest == w.evaluated.report_digest


@pytest.mark.parametrize(
    ("cls", "decision", "approvers"),
    [
        (RevisionApproved, APPROVED, ("bob@example.internal",)),
        (RevisionDenied, DENIED, ("bob@example.internal",)),
    ],
)
async def test_a_decision_on_the_log_is_recorded_with_who_made_it(
    cls: type, decision: str, approvers: tuple[str, ...]
) -> None:
    w = await evaluated(world())
    event: Any = lifecycle(cls, ADAPTER, REVISION, ENV)
    await w.deliver(event)
    found = await w.store.decision(ADAPTER, REVISION, ENV)
    assert found is not None
    assert (found.decision, found.approvers, found.event_id, found.key_id) == (
        decision,
        approvers,
        event.envelope.event_id,
        event.key_id,
    )
    assert await w.store.pending(ENV) == []  # decided: it awaits nothing now


@pytest.mark.parametrize("cls", [RevisionApproved, RevisionDenied])
async def test_a_redelivered_decision_changes_nothing(cls: type) -> None:
    w = await evaluated(world())
    event: Any = lifecycle(cls, ADAPTER, REVISION, ENV)
    await w.deliver(event)
    before = await w.store.decision(ADAPTER, REVISION, ENV)
    assert not await w.store.project(dataclasses.replace(event, key_id="other"))
    assert await w.store.decision(ADAPTER, REVISION, ENV) == before


async def test_a_second_decision_for_one_environment_is_refused_loudly_and_the_first_stands() -> (
    None
):
    w = await evaluated(world())
    approved = lifecycle(RevisionApproved, ADAPTER, REVISION, ENV)
    await w.deliver(approved)
    with pytest.raises(ConflictingDecision, match="already stands"):
        await w.store.project(lifecycle(RevisionDenied, ADAPTER, REVISION, ENV))
    found = await w.store.decision(ADAPTER, REVISION, ENV)
    assert found is not None and found.event_id == approved.envelope.event_id


async def _committed(w: World, event: Any) -> Any:
    return (await w.registry.transition(event)).events[0]


@pytest.mark.parametrize(
    ("forge", "refused"),
    [
        # signed by no trusted key (an insider's own key)
        (
            lambda e: dataclasses.replace(
                e,
                key_id=Signer(Ed25519PrivateKey.generate()).key_id,
                signature=Signer(Ed25519PrivateKey.generate()).sign(claim_of(e)),
            ),
            "signature_unknown_key",
        ),
        # the trusted key's signature over other approvers
        (lambda e: dataclasses.replace(e, approvers=["mallory"]), "signature_invalid"),
        (lambda e: dataclasses.replace(e, signature="not base64!"), "signature_invalid"),
    ],
)
async def test_a_forged_decision_on_the_log_is_refused_and_the_real_one_then_stands(
    forge: Any, refused: str
) -> None:
    w = await evaluated(world())
    real = await _committed(w, lifecycle(RevisionApproved, ADAPTER, REVISION, ENV))
    with pytest.raises(UntrustedDecision, match=refused):
        await w.handlers[RevisionApproved](forge(real))
    assert await w.store.decision(ADAPTER, REVISION, ENV) is None
    await w.handlers[RevisionApproved](real)
    found = await w.store.decision(ADAPTER, REVISION, ENV)
    assert found is not None and found.event_id == real.envelope.event_id


async def test_a_validly_signed_decision_the_registry_never_committed_is_refused() -> None:
    w = await evaluated(world())
    replayed = lifecycle(RevisionApproved, ADAPTER, REVISION, ENV)  # signed, never committed
    with pytest.raises(UntrustedDecision, match="decision_not_committed"):
        await w.handlers[RevisionApproved](replayed)
    assert await w.store.decision(ADAPTER, REVISION, ENV) is None


# Casting a ballot.


async def test_a_ballot_can_be_withdrawn_until_the_decision_is_final() -> None:
    w = await evaluated(world())
    await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    await withdraw(w.decider, approver("alice"), ADAPTER, REVISION, ENV)
    assert await w.store.ballots(ADAPTER, REVISION, ENV) == []
    with pytest.raises(Refused) as none:
        await withdraw(w.decider, approver("alice"), ADAPTER, REVISION, ENV)
    assert none.value.reason is Reason.NO_BALLOT
    # Alice approves again; bob's approval makes the decision final: no more withdrawing.
    await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    await cast(w.decider, approver("bob"), ADAPTER, REVISION, ENV, w.ballot("bob"))
    with pytest.raises(Refused) as final:
        await withdraw(w.decider, approver("alice"), ADAPTER, REVISION, ENV)
    assert final.value.reason is Reason.ALREADY_DECIDED


async def test_a_decision_signs_the_serving_contract_it_was_made_for() -> None:
    w = await evaluated(world())
    await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    decided = await cast(w.decider, approver("bob"), ADAPTER, REVISION, ENV, w.ballot("bob"))
    event = decided.event
    assert isinstance(event, RevisionApproved)
    assert event.serving_contract == ServingContract.of_environment(SPEC).digest()
    tampered = dataclasses.replace(event, serving_contract="sha256:" + "0" * 64)
    assert check_signature(tampered, keyring([w.decider.signer.public_key])) is not None


@pytest.mark.parametrize(
    ("change", "term"),
    [
        ({"base_model_revision": "sha256:" + "e" * 64}, "base_model_revision"),
        ({"tokenizer_hash": "sha256:" + "f" * 64}, "tokenizer_hash"),
        ({"quantization_profile": "awq-int4"}, "quantization_profile"),
    ],
)
async def test_a_ballot_after_the_environment_changed_is_refused_as_stale(
    change: dict[str, str], term: str
) -> None:
    w = await evaluated(world())
    first = await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    assert first.verdict.outcome is Outcome.RECORDED
    catalogue: Any = w.decider.catalogue
    await catalogue.put_environment(dataclasses.replace(SPEC, **change))
    with pytest.raises(Refused) as refused:
        await cast(w.decider, approver("bob"), ADAPTER, REVISION, ENV, w.ballot("bob"))
    assert refused.value.reason is Reason.STALE_CONTRACT
    assert term in refused.value.message and "re-evaluate" in refused.value.message
    assert await w.registry.events(ADAPTER, types=[RevisionApproved]) == []


async def test_approvals_record_until_the_quorum_and_then_commit_a_signed_approval() -> None:
    w = await evaluated(world())
    first = await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    assert (first.verdict.outcome, first.event, first.required_approvals) == (
        Outcome.RECORDED,
        None,
        2,
    )
    assert await w.registry.events(ADAPTER, types=[RevisionApproved]) == []
    [pending] = await w.store.pending(ENV)
    assert pending.approvals == ("alice",)

    second = await cast(w.decider, approver("bob"), ADAPTER, REVISION, ENV, w.ballot("bob"))
    assert second.verdict.outcome is Outcome.APPROVED
    [committed] = await w.registry.events(ADAPTER, types=[RevisionApproved])
    assert second.event == committed
    assert isinstance(committed, RevisionApproved)
    assert committed.approvers == ["alice", "bob"]
    assert committed.envelope.actor == Actor(principal="bob", role="approver")
    assert committed.envelope.causation_id == w.evaluated.envelope.event_id
    assert committed.comment == "alice: alice looked\nbob: bob looked"
    assert check_signature(committed, keyring([w.decider.signer.public_key])) is None
    record = await w.registry.revision(ADAPTER, REVISION)
    assert record is not None and record.status.track(ENV) is State.APPROVED
    decision = await w.store.decision(ADAPTER, REVISION, ENV)
    assert decision is not None and decision.approvers == ("alice", "bob")
    assert [b.principal for b in await w.store.ballots(ADAPTER, REVISION, ENV)] == ["alice", "bob"]


async def test_the_approval_read_back_from_the_log_changes_nothing() -> None:
    w = await evaluated(world())
    await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    decided = await cast(w.decider, approver("bob"), ADAPTER, REVISION, ENV, w.ballot("bob"))
    before = await w.store.decision(ADAPTER, REVISION, ENV)
    await w.handlers[RevisionApproved](decided.event)
    assert await w.store.decision(ADAPTER, REVISION, ENV) == before


async def test_one_denial_decides_and_commits_a_signed_denial() -> None:
    w = await evaluated(world())
    ballot = w.ballot("carol", Choice.DENY, comment="tone regressions")
    decided = await cast(w.decider, approver("carol"), ADAPTER, REVISION, ENV, ballot)
    assert decided.verdict.outcome is Outcome.DENIED
    [committed] = await w.registry.events(ADAPTER, types=[RevisionDenied])
    assert isinstance(committed, RevisionDenied)
    assert (committed.comment, committed.envelope.actor.principal) == ("tone regressions", "carol")
    assert check_signature(committed, keyring([w.decider.signer.public_key])) is None
    record = await w.registry.revision(ADAPTER, REVISION)
    assert record is not None and record.status.track(ENV) is State.DENIED
    decision = await w.store.decision(ADAPTER, REVISION, ENV)
    assert decision is not None and (decision.decision, decision.approvers) == (DENIED, ("carol",))


async def test_a_ballot_after_the_decision_is_refused_and_commits_nothing() -> None:
    w = await evaluated(world())
    await cast(w.decider, approver("carol"), ADAPTER, REVISION, ENV, w.ballot("carol", Choice.DENY))
    outbox = w.registry.outbox
    with pytest.raises(Refused) as refused:
        await cast(w.decider, approver("dave"), ADAPTER, REVISION, ENV, w.ballot("dave"))
    assert refused.value.reason is Reason.ALREADY_DECIDED
    assert w.registry.outbox == outbox


async def test_an_approver_counts_once() -> None:
    w = await evaluated(world())
    await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    with pytest.raises(Refused) as refused:
        await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, w.ballot("alice"))
    assert refused.value.reason is Reason.ALREADY_APPROVED
    assert len(await w.store.ballots(ADAPTER, REVISION, ENV)) == 1


async def test_the_submitter_is_refused_a_ballot_on_their_own_revision() -> None:
    w = await evaluated(world())
    with pytest.raises(Refused) as refused:
        await cast(w.decider, approver(SUBMITTER), ADAPTER, REVISION, ENV, w.ballot(SUBMITTER))
    assert refused.value.reason is Reason.SEPARATION_OF_DUTIES
    assert await w.store.ballots(ADAPTER, REVISION, ENV) == []


async def test_a_ballot_on_a_stale_report_is_refused_and_recorded_nowhere() -> None:
    w = await evaluated(world())
    stale = w.ballot("alice", report_digest="sha256:" + "0" * 64)
    with pytest.raises(Refused) as refused:
        await cast(w.decider, approver("alice"), ADAPTER, REVISION, ENV, stale)
    assert refused.value.reason is Reason.STALE_EVIDENCE
    assert await w.store.ballots(ADAPTER, REVISION, ENV) == []


async def test_a_ballot_for_an_environment_not_in_the_catalogue_is_refused() -> None:
    w = await evaluated(world())
    with pytest.raises(UnknownTarget):
        await cast(w.decider, approver("alice"), ADAPTER, REVISION, "moon", w.ballot("alice"))


class RacingRegistry(InMemoryRegistry):
    """Another approval service denies the revision just before this one commits."""

    async def commit(self, steps: Any, *, inbox: tuple[str, str] | None = None) -> Committed:
        first = steps[0].event.envelope
        rival = lifecycle(RevisionDenied, first.adapter, first.revision, first.environment)
        await super().commit([Step(rival)])
        return await super().commit(steps, inbox=inbox)


async def test_a_decision_raced_by_another_writer_is_a_conflict_and_its_ballot_rolls_back() -> None:
    w = world(RacingRegistry())
    # Set the world up without the race: the rival only runs when the ballot commits.
    w.registered = lifecycle(RevisionRegistered, ADAPTER, REVISION)
    w.evaluated = lifecycle(RevisionEvaluated, ADAPTER, REVISION, ENV)
    steps: list[Any] = [w.registered, lifecycle(RevisionValidated, ADAPTER, REVISION), w.evaluated]
    await InMemoryRegistry.commit(w.registry, [Step(e) for e in steps])
    for sealed in await w.registry.events(ADAPTER):
        await w.handlers[type(sealed)](sealed)
    denial = w.ballot("carol", Choice.DENY)
    with pytest.raises(Conflict):
        await cast(w.decider, approver("carol"), ADAPTER, REVISION, ENV, denial)
    assert await w.store.ballots(ADAPTER, REVISION, ENV) == []
    assert await w.store.decision(ADAPTER, REVISION, ENV) is None
