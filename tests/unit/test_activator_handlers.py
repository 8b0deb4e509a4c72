"""The activator's handlers forward: an approval that rolls out, promote to a canary, expand
and complete it, and a replica that fails a load, against the in-memory registry, store
and replicas. Each: what is committed and where the pointer stands, a redelivery that
changes nothing, and the main refusal."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.activator.fleet import ReplicasUnreachable
from services.activator.handlers import FLOW, handlers
from services.activator.plans import Outcome, RequestAction
from services.activator.rollouts import CONSUMER
from services.activator.routing import lora_name
from shared.contract import ServingContract
from shared.decisions import UntrustedDecision
from shared.events import (
    Actor,
    CanaryExpanded,
    CanaryStarted,
    CommandHeader,
    ExpandCanary,
    PromoteRevision,
    RevisionActivated,
    RevisionApproved,
    RevisionSuperseded,
    RolloutFailed,
)
from shared.kafka.dispatch import PermanentError
from shared.pointers import EnvironmentPointer
from tests.factories import lifecycle
from tests.fakes.activator import ActivatorWorld, environment_spec

ADAPTER, ENV = "chat", "prod"
OPERATOR = Actor(principal="op-carol", role="operator")


def header(actor: Actor = OPERATOR) -> CommandHeader:
    return CommandHeader(
        command_id=str(uuid.uuid4()),
        adapter=ADAPTER,
        environment=ENV,
        actor=actor,
        issued_at=datetime.now(UTC),
        correlation_id="correlation",
    )


def only_failure(events: list[Any]) -> bool:
    """True when a rollout committed nothing but its RolloutFailed (ADR 0025)."""
    return [type(e) for e in events] == [RolloutFailed] and bool(events[0].reason)


class Rollout:
    """A world, its handler map, and what the registry committed since a mark."""

    def __init__(self, tmp_path: Path, **spec: Any) -> None:
        analysis = spec.pop("analysis", None)
        self.world = ActivatorWorld(tmp_path, environment_spec(ENV, **spec), analysis=analysis)
        self.handle = handlers(self.world.deps)
        self.mark = 0

    async def since_mark(self) -> list[Any]:
        """The events committed since the last call (or the start), in commit order."""
        outbox = self.world.registry.outbox
        fresh, self.mark = outbox[self.mark :], len(outbox)
        return [self.world.registry.codec.decode(e.payload) for e in fresh]

    async def pointer(self) -> EnvironmentPointer:
        return await self.world.registry.pointer(ADAPTER, ENV)

    def listed(self) -> list[set[str]]:
        return self.world.replicas.listing()

    async def active(self, content: bytes) -> str:
        """A revision approved and rolled out (nothing served before: it is activated)."""
        approved = await self.world.approve(ADAPTER, content)
        await self.handle[RevisionApproved](approved)
        await self.since_mark()
        return approved.envelope.revision

    async def canary(self, content: bytes, percent: int = 0) -> str:
        """A revision approved (by hand) and promoted to a canary beside the active one."""
        approved = await self.world.approve(ADAPTER, content)
        revision = approved.envelope.revision
        await self.handle[PromoteRevision](
            PromoteRevision(header=header(), revision=revision, canary_percent=percent)
        )
        await self.since_mark()
        return revision


@pytest.fixture
def rollout(tmp_path: Path) -> Rollout:
    return Rollout(tmp_path)


def test_the_handler_map_covers_every_event_and_command_the_flow_says_it_handles(
    rollout: Rollout,
) -> None:
    assert set(rollout.handle) == set(FLOW.handles)


# RevisionApproved


async def test_an_approved_revision_with_nothing_active_is_activated_on_every_replica(
    rollout: Rollout,
) -> None:
    approved = await rollout.world.approve(ADAPTER, b"one", approvers=["bob", "dan"])
    revision = approved.envelope.revision
    await rollout.since_mark()
    await rollout.handle[RevisionApproved](approved)
    [activated] = await rollout.since_mark()
    assert isinstance(activated, RevisionActivated)
    assert (activated.previous_revision, activated.envelope.causation_id) == (
        None,
        approved.envelope.event_id,
    )
    assert await rollout.pointer() == EnvironmentPointer(active=revision)
    assert rollout.listed() == [{lora_name(ADAPTER, revision)}] * 2
    assert all(r.routing is not None for r in rollout.world.replicas)
    outcome = await rollout.world.store.outcome(approved.envelope.event_id)
    assert outcome is not None
    assert (outcome["outcome"], outcome["action"]) == (Outcome.COMMITTED, RequestAction.APPROVED)
    assert await rollout.world.store.approvers(ADAPTER, revision, ENV) == ["bob", "dan"]


async def test_a_redelivered_approval_changes_nothing(rollout: Rollout) -> None:
    approved = await rollout.world.approve(ADAPTER, b"one")
    await rollout.handle[RevisionApproved](approved)
    await rollout.since_mark()
    loads = [list(r.loads) for r in rollout.world.replicas]
    await rollout.handle[RevisionApproved](approved)
    assert await rollout.since_mark() == []
    assert [r.loads for r in rollout.world.replicas] == loads


async def test_an_approval_where_rollouts_start_by_hand_waits_for_a_promote_and_is_handled(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, analysis={"auto_rollout": "false"})
    approved = await rollout.world.approve(ADAPTER, b"one")
    await rollout.since_mark()
    await rollout.handle[RevisionApproved](approved)
    assert await rollout.since_mark() == []
    assert await rollout.pointer() == EnvironmentPointer()
    outcome = await rollout.world.store.outcome(approved.envelope.event_id)
    assert outcome is not None and outcome["outcome"] is Outcome.WAITING
    assert "waiting for `adapterctl promote " in outcome["detail"]
    assert await rollout.world.registry.handled(CONSUMER, approved.envelope.event_id)


# PromoteRevision


async def test_promoting_an_approved_revision_starts_a_canary_at_the_first_step(
    rollout: Rollout,
) -> None:
    stable = await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    revision = approved.envelope.revision
    await rollout.since_mark()
    command = PromoteRevision(header=header(), revision=revision)
    await rollout.handle[PromoteRevision](command)
    [started] = await rollout.since_mark()
    assert isinstance(started, CanaryStarted)
    assert (started.traffic_percent, started.stable_revision) == (10, stable)
    assert started.envelope.actor == OPERATOR
    assert await rollout.pointer() == EnvironmentPointer(
        active=stable, canary=revision, canary_percent=10
    )
    both = {lora_name(ADAPTER, stable), lora_name(ADAPTER, revision)}
    assert rollout.listed() == [both, both]
    step = await rollout.world.store.canary_step(ADAPTER, ENV)
    assert step is not None and (step.revision, step.traffic_percent) == (revision, 10)
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["outcome"] is Outcome.COMMITTED


async def test_a_redelivered_promote_changes_nothing(rollout: Rollout) -> None:
    await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    await rollout.handle[PromoteRevision](command)
    await rollout.since_mark()
    pointer = await rollout.pointer()
    await rollout.handle[PromoteRevision](command)
    assert await rollout.since_mark() == []
    assert await rollout.pointer() == pointer


async def test_a_promote_by_an_approver_of_the_revision_is_refused_where_duties_are_separated(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, approver_may_operate=False, analysis={"auto_rollout": "false"})
    approved = await rollout.world.approve(ADAPTER, b"one", approvers=[OPERATOR.principal])
    await rollout.handle[RevisionApproved](approved)  # records who approved
    await rollout.since_mark()
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="separates approving from operating"):
        await rollout.handle[PromoteRevision](command)
    assert await rollout.since_mark() == []
    assert await rollout.pointer() == EnvironmentPointer()
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["outcome"] is Outcome.REFUSED


async def test_a_promote_by_someone_who_is_no_operator_is_refused(rollout: Rollout) -> None:
    approved = await rollout.world.approve(ADAPTER, b"one")
    await rollout.since_mark()
    trainer = Actor(principal="trainer-alice", role="trainer")
    command = PromoteRevision(header=header(trainer), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="only an operator or admin"):
        await rollout.handle[PromoteRevision](command)
    assert await rollout.since_mark() == []


async def test_a_forged_approval_is_refused_and_the_real_one_then_rolls_out(
    rollout: Rollout,
) -> None:
    approved = await rollout.world.approve(ADAPTER, b"one", approvers=("approver-bob",))
    await rollout.since_mark()
    # An insider's copy naming other approvers: the trusted key's signature no longer holds.
    forged = dataclasses.replace(approved, approvers=["op-carol"])
    with pytest.raises(UntrustedDecision, match="signature_invalid"):
        await rollout.handle[RevisionApproved](forged)
    assert await rollout.world.store.approvers(ADAPTER, approved.envelope.revision, ENV) == []
    assert await rollout.since_mark() == []
    await rollout.handle[RevisionApproved](approved)
    assert await rollout.world.store.approvers(ADAPTER, approved.envelope.revision, ENV) == [
        "approver-bob"
    ]


async def test_an_approval_made_for_another_serving_contract_is_refused_as_stale(
    rollout: Rollout,
) -> None:
    spec = await rollout.world.catalogue.environment(ENV)
    assert spec is not None
    made_for = dataclasses.replace(spec, base_model_revision="sha256:" + "0" * 64)
    approved = await rollout.world.approve(
        ADAPTER, b"one", serving_contract=ServingContract.of_environment(made_for).digest()
    )
    await rollout.since_mark()
    await rollout.handle[RevisionApproved](approved)
    assert await rollout.since_mark() == []  # nothing rolled out
    outcome = await rollout.world.store.outcome(approved.envelope.event_id)
    assert outcome is not None and outcome["outcome"] is Outcome.REFUSED
    assert "stale approval" in outcome["detail"]


async def test_an_approval_made_for_the_environments_contract_rolls_out(
    rollout: Rollout,
) -> None:
    spec = await rollout.world.catalogue.environment(ENV)
    assert spec is not None
    contract = ServingContract.of_environment(spec).digest()
    approved = await rollout.world.approve(ADAPTER, b"one", serving_contract=contract)
    await rollout.since_mark()
    await rollout.handle[RevisionApproved](approved)
    assert [type(e).__name__ for e in await rollout.since_mark()] == ["RevisionActivated"]


async def test_an_approval_the_registry_never_committed_is_refused(rollout: Rollout) -> None:
    approved = await rollout.world.approve(ADAPTER, b"one")
    replay = lifecycle(
        RevisionApproved, ADAPTER, approved.envelope.revision, ENV, approvers=["op-carol"]
    )  # validly signed by the trusted key, but not a decision the registry holds
    with pytest.raises(UntrustedDecision, match="decision_not_committed"):
        await rollout.handle[RevisionApproved](replay)


@pytest.mark.parametrize(
    ("actor", "refused"),
    [
        # a name nobody registered, claiming admin: the command's role counts for nothing
        (Actor(principal="mallory", role="admin"), "no active principal"),
        # a real operator typed as admin
        (Actor(principal="op-carol", role="admin"), "holds operator, not admin"),
    ],
)
async def test_a_command_whose_actor_the_registry_does_not_hold_is_refused_and_recorded(
    rollout: Rollout, actor: Actor, refused: str
) -> None:
    approved = await rollout.world.approve(ADAPTER, b"one")
    await rollout.since_mark()
    command = PromoteRevision(header=header(actor), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match=refused):
        await rollout.handle[PromoteRevision](command)
    assert await rollout.since_mark() == []
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["outcome"] is Outcome.REFUSED
    assert refused in outcome["detail"] and outcome["principal"] == actor.principal


# ExpandCanary


async def test_expanding_the_canary_gives_it_the_larger_share(rollout: Rollout) -> None:
    stable = await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    await rollout.handle[ExpandCanary](
        ExpandCanary(header=header(), revision=canary, traffic_percent=50)
    )
    [expanded] = await rollout.since_mark()
    assert isinstance(expanded, CanaryExpanded)
    assert expanded.traffic_percent == 50
    assert expanded.evidence["operator"] == OPERATOR.principal
    assert await rollout.pointer() == EnvironmentPointer(
        active=stable, canary=canary, canary_percent=50
    )
    step = await rollout.world.store.canary_step(ADAPTER, ENV)
    assert step is not None and step.traffic_percent == 50


async def test_a_redelivered_expand_changes_nothing(rollout: Rollout) -> None:
    await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    command = ExpandCanary(header=header(), revision=canary, traffic_percent=50)
    await rollout.handle[ExpandCanary](command)
    await rollout.since_mark()
    await rollout.handle[ExpandCanary](command)
    assert await rollout.since_mark() == []
    assert (await rollout.pointer()).canary_percent == 50


async def test_an_expand_to_no_larger_share_is_refused(rollout: Rollout) -> None:
    await rollout.active(b"one")
    canary = await rollout.canary(b"two", percent=25)
    command = ExpandCanary(header=header(), revision=canary, traffic_percent=25)
    with pytest.raises(PermanentError, match="expand it to more than that"):
        await rollout.handle[ExpandCanary](command)
    assert await rollout.since_mark() == []
    assert (await rollout.pointer()).canary_percent == 25


# Completing the canary


async def test_expanding_the_canary_to_all_traffic_supersedes_the_active_revision_in_one_commit(
    rollout: Rollout,
) -> None:
    stable = await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    await rollout.handle[ExpandCanary](
        ExpandCanary(header=header(), revision=canary, traffic_percent=100)
    )
    superseded, activated = await rollout.since_mark()
    assert isinstance(superseded, RevisionSuperseded)
    assert (superseded.envelope.revision, superseded.superseded_by) == (stable, canary)
    assert isinstance(activated, RevisionActivated)
    assert (activated.envelope.revision, activated.previous_revision) == (canary, stable)
    assert activated.envelope.seq == superseded.envelope.seq + 1
    assert await rollout.pointer() == EnvironmentPointer(active=canary, rollback_target=stable)
    assert await rollout.world.store.canary_step(ADAPTER, ENV) is None
    warm = {lora_name(ADAPTER, canary), lora_name(ADAPTER, stable)}  # the target stays warm
    assert rollout.listed() == [warm, warm]


async def test_promoting_the_running_canary_completes_it(rollout: Rollout) -> None:
    stable = await rollout.active(b"one")
    canary = await rollout.canary(b"two")
    await rollout.handle[PromoteRevision](PromoteRevision(header=header(), revision=canary))
    assert [type(e) for e in await rollout.since_mark()] == [RevisionSuperseded, RevisionActivated]
    assert await rollout.pointer() == EnvironmentPointer(active=canary, rollback_target=stable)


async def test_a_retired_revision_is_unloaded_once_it_is_neither_served_nor_the_target(
    rollout: Rollout,
) -> None:
    first = await rollout.active(b"one")
    second = await rollout.canary(b"two", percent=100)
    third = await rollout.canary(b"three", percent=100)
    assert await rollout.pointer() == EnvironmentPointer(active=third, rollback_target=second)
    assert all(lora_name(ADAPTER, first) in r.unloads for r in rollout.world.replicas)
    kept = {lora_name(ADAPTER, third), lora_name(ADAPTER, second)}
    assert rollout.listed() == [kept, kept]


# A replica that fails


async def test_a_replica_that_fails_a_load_stops_the_rollout_before_anything_is_committed(
    rollout: Rollout,
) -> None:
    stable = await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    await rollout.since_mark()
    rollout.world.replicas.target("http://replica-2").fail_loads("out of LoRA slots")
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="did not load on every replica"):
        await rollout.handle[PromoteRevision](command)
    assert only_failure(await rollout.since_mark())  # no move, only the fact
    assert await rollout.pointer() == EnvironmentPointer(active=stable)
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["outcome"] is Outcome.FAILED
    assert outcome["evidence"]["stopped_by"] == "load"
    assert "out of LoRA slots" in outcome["evidence"]["failures"]


async def test_a_replica_that_answers_a_load_without_loading_stops_the_rollout(
    rollout: Rollout,
) -> None:
    await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    await rollout.since_mark()
    rollout.world.replicas.target("http://replica-1").silent = True
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="not listed"):
        await rollout.handle[PromoteRevision](command)
    assert only_failure(await rollout.since_mark())  # no move, only the fact
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["evidence"]["stopped_by"] == "verify"


async def test_a_failed_command_redelivered_is_answered_from_its_outcome_and_loads_nothing(
    rollout: Rollout,
) -> None:
    await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    replica = rollout.world.replicas.target("http://replica-2")
    replica.fail_loads()
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError):
        await rollout.handle[PromoteRevision](command)
    loads = list(replica.loads)
    await rollout.handle[PromoteRevision](command)  # answered already: not raised again
    assert replica.loads == loads


async def test_an_approval_while_a_replica_is_down_is_waited_out_then_rolled_out(
    rollout: Rollout,
) -> None:
    """A replica that gives no answer is an outage (ADR 0008), not the revision's fault: the
    handler raises for the dispatcher to retry, records no failed outcome, and the same
    approval, handled again once the replica is back, rolls the revision out."""
    approved = await rollout.world.approve(ADAPTER, b"one")
    await rollout.since_mark()
    [down, _] = rollout.world.replicas
    down.down = True
    with pytest.raises(ReplicasUnreachable, match="connection refused"):
        await rollout.handle[RevisionApproved](approved)
    assert await rollout.world.store.outcome(approved.envelope.event_id) is None
    assert await rollout.since_mark() == []

    down.down = False
    await rollout.handle[RevisionApproved](approved)
    [activated] = await rollout.since_mark()
    assert isinstance(activated, RevisionActivated)
    assert (await rollout.pointer()).active == approved.envelope.revision


async def test_a_canary_on_replicas_that_take_no_routing_is_stopped_before_the_log_says_so(
    rollout: Rollout,
) -> None:
    """Stock vLLM serves exactly the name it is asked for: a 10% share there would be recorded
    on the audit log and applied nowhere. The promotion stops with the reason; nothing is
    written, nothing is loaded."""
    stable = await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    await rollout.since_mark()
    stock = rollout.world.replicas.target("http://replica-2")
    stock.takes_routing = False
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="take no routing"):
        await rollout.handle[PromoteRevision](command)
    assert only_failure(await rollout.since_mark())  # no move, only the fact
    assert await rollout.pointer() == EnvironmentPointer(active=stable)
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["evidence"]["stopped_by"] == "routing"
    assert outcome["evidence"]["takes_no_routing"] == "http://replica-2"
    assert lora_name(ADAPTER, approved.envelope.revision) not in stock.loads


async def test_a_revision_listed_but_not_served_stops_the_rollout(rollout: Rollout) -> None:
    """vLLM fills its listing in the very call that answered the load: a name listed but
    answering 404 to a request under it is not served, and no traffic moves to it."""
    await rollout.active(b"one")
    approved = await rollout.world.approve(ADAPTER, b"two")
    await rollout.since_mark()
    name = lora_name(ADAPTER, approved.envelope.revision)
    rollout.world.replicas.target("http://replica-1").unserved.add(name)
    command = PromoteRevision(header=header(), revision=approved.envelope.revision)
    with pytest.raises(PermanentError, match="listed but not served"):
        await rollout.handle[PromoteRevision](command)
    assert only_failure(await rollout.since_mark())  # no move, only the fact
    outcome = await rollout.world.store.outcome(command.header.command_id)
    assert outcome is not None and outcome["evidence"]["missing_on"] == "http://replica-1"
