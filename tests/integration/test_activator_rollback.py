"""Rollback in one command, refusals with their reasons, and rollouts that stop before any
traffic moves: real Kafka, PostgreSQL, activator process and two reference replicas."""

from __future__ import annotations

import uuid

import httpx

from shared.events import (
    CanaryStarted,
    RevisionActivated,
    RevisionExpired,
    RevisionRolledBack,
    RevisionSuperseded,
)
from shared.pointers import EnvironmentPointer
from tests.factories import lifecycle
from tests.integration.test_activator import (
    APPROVER,
    ENV,
    OPERATOR,
    Approved,
    Rollouts,
    rollouts_stack,  # noqa: F401  (fixture `rollouts`)
)


def operator(rollouts: Rollouts) -> str:
    """The operator's bearer token: adapterctl's commands act as its principal."""
    return rollouts.stack.token_of(OPERATOR, "operator")


async def active_pair(rollouts: Rollouts, adapter: str) -> tuple[Approved, Approved]:
    """The good adapter active first, then the shuffled one promoted over it by an operator."""
    good = await rollouts.approve(adapter, "good")
    rollouts.wait(adapter, (RevisionActivated, good.revision))
    shuffled = await rollouts.approve(adapter, "shuffled")
    rollouts.wait(adapter, (CanaryStarted, shuffled.revision))  # the policy starts a canary
    done = rollouts.stack.adapterctl(
        "promote",
        adapter,
        shuffled.revision,
        "--environment",
        ENV,
        "--activate",
        token=operator(rollouts),
    )
    assert "active" in done.stdout
    rollouts.wait(
        adapter, (RevisionSuperseded, good.revision), (RevisionActivated, shuffled.revision)
    )
    return good, shuffled


async def test_adapterctl_rollback_restores_the_previous_revision_and_replicas_answer_with_it(
    rollouts: Rollouts,
) -> None:
    adapter = f"capitals-{uuid.uuid4().hex[:8]}"
    good, shuffled = await active_pair(rollouts, adapter)
    truth = [f.capital for f in rollouts.tiny.facts]
    served_before = rollouts.answers(adapter)
    assert all(answers != truth for answers in served_before)  # the regressed revision serves
    assert served_before[0] == served_before[1]

    done = rollouts.stack.adapterctl(
        "rollback",
        adapter,
        "--environment",
        ENV,
        "--reason",
        "wrong capitals",
        token=operator(rollouts),
    )

    assert "rolled back" in done.stdout
    assert rollouts.answers(adapter) == [truth, truth]  # every replica answers as `good` again
    events = rollouts.wait(adapter, (RevisionRolledBack, shuffled.revision))
    rolled_back = next(e for e in events if isinstance(e, RevisionRolledBack))
    restored = [e for e in events if isinstance(e, RevisionActivated)][-1]
    assert rolled_back.restored_revision == good.revision == restored.envelope.revision
    assert rolled_back.reason == "wrong capitals"
    assert rolled_back.envelope.actor.principal == OPERATOR
    assert restored.evidence[f"loaded.{good.lora}"] == "2 replicas, 2 already warm"
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert (pointer.active, pointer.rollback_target) == (good.revision, None)


async def test_a_rollback_to_an_expired_revision_is_refused_with_the_reason(
    rollouts: Rollouts,
) -> None:
    adapter = f"expiring-{uuid.uuid4().hex[:8]}"
    good, shuffled = await active_pair(rollouts, adapter)
    await rollouts.registry.transition(
        lifecycle(RevisionExpired, adapter, good.revision, reason="retention")
    )

    refused = rollouts.stack.adapterctl(
        "rollback",
        adapter,
        "--environment",
        ENV,
        "--to",
        good.revision,
        check=False,
        token=operator(rollouts),
    )
    untargeted = rollouts.stack.adapterctl(
        "rollback", adapter, "--environment", ENV, check=False, token=operator(rollouts)
    )

    assert refused.returncode == 1
    assert "expired under the retention policy" in refused.stderr
    assert untargeted.returncode == 1 and "no rollback target" in untargeted.stderr
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert pointer.active == shuffled.revision


async def test_an_approver_may_not_expand_the_canary_they_approved_where_duties_are_separated(
    rollouts: Rollouts,
) -> None:
    adapter = f"separated-{uuid.uuid4().hex[:8]}"
    first = await rollouts.approve(adapter, "good")
    rollouts.wait(adapter, (RevisionActivated, first.revision))
    second = await rollouts.approve(adapter, "json")
    rollouts.wait(adapter, (CanaryStarted, second.revision))

    by_approver = rollouts.stack.adapterctl(
        "expand",
        adapter,
        "--environment",
        ENV,
        "--percent",
        "60",
        check=False,
        token=rollouts.stack.token_of(APPROVER, "operator"),  # bob approves and operates
    )
    by_auditor = rollouts.stack.adapterctl(
        "expand",
        adapter,
        "--environment",
        ENV,
        "--percent",
        "60",
        check=False,
        token=rollouts.stack.token_of("eve", "auditor"),
    )
    by_operator = rollouts.stack.adapterctl(
        "expand", adapter, "--environment", ENV, "--percent", "60", token=operator(rollouts)
    )

    assert (
        by_approver.returncode == 1 and "separates approving from operating" in by_approver.stderr
    )
    assert by_auditor.returncode == 1 and "eve acts as auditor, not admin or operator" in (
        by_auditor.stderr
    )
    assert "canary at 60%" in by_operator.stdout
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert (pointer.canary, pointer.canary_percent) == (second.revision, 60)


async def test_a_manifest_for_another_tokenizer_stops_the_rollout_before_traffic_moves(
    rollouts: Rollouts,
) -> None:
    adapter = f"mismatch-{uuid.uuid4().hex[:8]}"
    approved = await rollouts.approve(
        adapter, "good", tokenizer_from=rollouts.tiny.base_other_tokenizer
    )

    outcome = await rollouts.outcome(approved.event_id)

    assert outcome["outcome"] == "failed"
    assert outcome["evidence"]["stopped_by"] == "contract"
    for url in rollouts.replicas:
        assert f"replica {url}: tokenizer_hash is" in outcome["detail"]
        assert approved.lora not in rollouts.models(url)  # never loaded
        assert adapter not in rollouts.routing(url)["adapters"]
    assert await rollouts.registry.pointer(adapter, ENV) == EnvironmentPointer()
    assert not [e for e in rollouts.stack.events(adapter) if type(e).__name__.startswith("Canary")]


async def test_a_replica_that_does_not_load_stops_the_rollout_before_traffic_moves(
    rollouts: Rollouts,
) -> None:
    adapter = f"flaky-{uuid.uuid4().hex[:8]}"
    stable = await rollouts.approve(adapter, "good")
    rollouts.wait(adapter, (RevisionActivated, stable.revision))
    second_replica = rollouts.replicas[1]

    # The second replica answers "success" and loads nothing (vLLM #18372).
    with rollouts.faults(second_replica, loads={adapter: "silent"}):
        candidate = await rollouts.approve(adapter, "json")
        silent = await rollouts.outcome(candidate.event_id)
    # An operator retries; now the same replica fails every load outright (after retries).
    with rollouts.faults(second_replica, loads={adapter: "error"}):
        retried = rollouts.stack.adapterctl(
            "promote",
            adapter,
            candidate.revision,
            "--environment",
            ENV,
            "--canary",
            "10",
            check=False,
            token=operator(rollouts),
        )

    assert silent["outcome"] == "failed" and silent["evidence"]["stopped_by"] == "verify"
    assert f"is not listed by {second_replica}" in silent["detail"]
    assert retried.returncode == 1 and "did not load on every replica" in retried.stderr
    assert "injected load fault" in retried.stderr
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert (pointer.active, pointer.canary) == (stable.revision, None)
    for url in rollouts.replicas:
        route = rollouts.routing(url)["adapters"][adapter]
        assert (route["active"], route["canary"]) == (stable.lora, None)
    assert not [e for e in rollouts.stack.events(adapter) if isinstance(e, CanaryStarted)]
    assert httpx.get(f"{rollouts.activator_url}/healthz", timeout=5).status_code == 200
