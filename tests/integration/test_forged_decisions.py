"""Read models verify before they believe, and approvals bind their environment (issue
#15): an insider holding the relay's Kafka password (the one principal that may write the
audit log) appends a RevisionApproved
naming approvers of their choosing. The approval service's read model and the activator,
running as their own processes on real Kafka and PostgreSQL, refuse it with the reason
on the dead-letter topic, and the real decision that follows stands in both."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.codec import Codec
from shared.contract import ServingContract
from shared.events import Actor, Envelope, RevisionApproved
from shared.kafka import acl
from shared.kafka.producer import make_producer, publish
from shared.kafka.topics import dlq_of
from shared.registry.catalogue_store import PostgresCatalogue
from shared.signing import Signer, claim_of
from tests.eventually import eventually
from tests.integration.test_approval_stack import (
    STAGING,
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)
from tests.stack import answering


@pytest.fixture(scope="module")
def activator_url(approval: ApprovalStack) -> str:
    """The activator beside the approval service, trusting the approval's key alone."""
    stack = approval.stack
    stack.start(
        "activator",
        ACTIVATOR_ROUTING_DIR="",
        DECISION_PUBLIC_KEYS=str(approval.public_key),
    )
    url = stack.env()["ACTIVATOR_URL"]
    eventually(partial(answering, url + "/healthz"), timeout=120, message="no activator")
    return url


def forged_approval(seeded: Seeded, sign: Callable[[RevisionApproved], RevisionApproved]) -> Any:
    envelope = Envelope(
        event_id=str(uuid.uuid4()),
        adapter=seeded.adapter,
        revision=seeded.revision,
        environment=seeded.environment,
        occurred_at=datetime.now(UTC),
        actor=Actor(principal="mallory", role="approver"),
        correlation_id=str(uuid.uuid4()),
    )
    unsigned = RevisionApproved(
        envelope=envelope,
        approvers=["mallory"],
        manifest_digest=seeded.manifest_digest,
        report_digest=seeded.report_digest,
        comment="looks fine to me",
        signature="",
        key_id="",
    )
    return sign(unsigned)


def by_insider_key(event: RevisionApproved) -> RevisionApproved:
    insider = Signer(Ed25519PrivateKey.generate())
    return dataclasses.replace(
        event, signature=insider.sign(claim_of(event)), key_id=insider.key_id
    )


def dead_letters_of(approval: ApprovalStack, event_id: str) -> dict[str, str]:
    """The dead-lettered copies of `event_id`: each service's reason."""
    codec = Codec.from_env()
    found = {}
    for record in approval.stack.records(dlq_of(approval.stack.lifecycle_topic)):
        if codec.decode(record.value or b"").envelope.event_id == event_id:
            found[record.header("dlq.service") or "?"] = record.header("dlq.reason") or ""
    return found


async def test_a_forged_approval_reaches_no_read_model_and_the_real_decision_stands(
    approval: ApprovalStack, activator_url: str
) -> None:
    seeded = await approval.seed(f"forged-{approval.stack.token}", STAGING)
    approval.wait_pending(seeded)
    forged = forged_approval(seeded, by_insider_key)

    relay = approval.stack.infra.as_principal(acl.RELAY)  # the stolen password
    value = Codec.from_env().encode(forged)
    publish(make_producer(relay), approval.stack.lifecycle_topic, key=b"k", value=value)

    reasons = eventually(
        lambda: (
            (r := dead_letters_of(approval, forged.envelope.event_id)).keys()
            >= {"approval", "activator"}
            and r
        ),
        timeout=90,
        message="the forged approval was not refused by both read models",
    )
    for service in ("approval", "activator"):
        assert "signature_unknown_key" in reasons[service], reasons
    with approval.client("audrey") as audrey:  # still waiting for a real decision
        pending = audrey.get(f"/api/v1/environments/{STAGING}/pending").json()["revisions"]
    assert any(r["revision"] == seeded.revision for r in pending)
    assert (
        httpx.get(f"{activator_url}/outcomes/{forged.envelope.event_id}", timeout=10).status_code
        == 404
    )

    # The real decision, after the forged one, is believed by both.
    with approval.client("bob") as bob:
        decided = bob.post(seeded.api_path + "/decisions", json=seeded.ballot(comment="ok"))
    assert decided.status_code == 200, decided.text
    real = approval.stack.wait_for(
        lambda evs: any(
            isinstance(e, RevisionApproved) and e.envelope.event_id != forged.envelope.event_id
            for e in evs
        ),
        adapter=seeded.adapter,
    )
    approved = next(e for e in real if isinstance(e, RevisionApproved) and e.approvers == ["bob"])
    answered = eventually(
        lambda: (
            httpx.get(f"{activator_url}/outcomes/{approved.envelope.event_id}", timeout=10)
            .json()
            .get("outcome")
        ),
        timeout=90,
        message="the activator never took the real approval",
    )
    assert answered in {"committed", "refused", "failed"}  # handled, not dead-lettered
    assert dead_letters_of(approval, approved.envelope.event_id) == {}


async def test_an_approval_after_the_environments_base_changed_is_refused_as_stale(
    approval: ApprovalStack,
) -> None:
    """Issue #15: an approval stayed valid after the environment's base changed. The ballot
    is now refused (409) with the terms that changed; restored, the decision signs the
    contract it was made for."""
    seeded = await approval.seed(f"stale-{approval.stack.token}", STAGING)
    approval.wait_pending(seeded)
    catalogue = PostgresCatalogue(approval.registry.pool)
    spec = await catalogue.environment(STAGING)
    assert spec is not None
    await catalogue.put_environment(
        dataclasses.replace(spec, base_model_revision="sha256:" + "e" * 64)
    )
    try:
        with approval.client("bob") as bob:
            stale = bob.post(seeded.api_path + "/decisions", json=seeded.ballot(comment="ok"))
    finally:
        await catalogue.put_environment(spec)
    assert stale.status_code == 409, stale.text
    problem = stale.json()
    assert problem["type"].endswith("stale-serving-contract")
    assert "base_model_revision" in problem["detail"] and "re-evaluate" in problem["detail"]
    assert not [e for e in approval.events_of(seeded.adapter) if isinstance(e, RevisionApproved)]

    with approval.client("bob") as bob:
        decided = bob.post(seeded.api_path + "/decisions", json=seeded.ballot(comment="ok"))
    assert decided.status_code == 200, decided.text
    events = approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionApproved) for e in evs), adapter=seeded.adapter
    )
    [approved] = [e for e in events if isinstance(e, RevisionApproved)]
    assert approved.serving_contract == ServingContract.of_environment(spec).digest()
