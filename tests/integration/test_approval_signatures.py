"""Signed decisions on the real lifecycle topic: `adapterctl audit verify --public-key`
proves every RevisionApproved / RevisionDenied the service signed, and names a forged one
even when the forger re-sealed the hash chain around it."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.chain import GENESIS_HASH, seal
from shared.codec import Codec
from shared.events import RevisionApproved, RevisionDenied
from shared.kafka.producer import make_producer
from shared.kafka.topics import admin_client
from shared.signing import public_pem
from tests.integration.test_approval_stack import (
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)

CODEC = Codec.default()


@dataclasses.dataclass(frozen=True)
class Decided:
    approved: Seeded
    denied: Seeded


@pytest.fixture(scope="module")
async def decided(approval: ApprovalStack) -> Decided:
    token = approval.stack.token
    approved = await approval.seed(f"signed-ok-{token}")
    denied = await approval.seed(f"signed-no-{token}")
    approval.wait_pending(approved)
    approval.wait_pending(denied)
    with approval.client("bob") as bob:
        bob.post(approved.api_path + "/decisions", json=approved.ballot(comment="ship it"))
        bob.post(denied.api_path + "/decisions", json=denied.ballot("deny", "hallucinates"))
    approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionApproved) for e in evs), adapter=approved.adapter
    )
    approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionDenied) for e in evs), adapter=denied.adapter
    )
    return Decided(approved, denied)


def verify(approval: ApprovalStack, topic: str, *keys: Path) -> tuple[int, dict[str, Any]]:
    """`audit verify` with these decision keys; a forged copy is checked by its hash chain
    and decision signatures alone (--unsigned: the copy bears no relay signatures, and the
    log's seal has tests of its own in test_signed_log.py)."""
    args = [a for key in keys for a in ("--public-key", str(key))]
    if topic != approval.stack.lifecycle_topic:
        args.append("--unsigned")
    result = approval.stack.adapterctl(
        "audit", "verify", "--topic", topic, "--json", *args, check=False
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def copy_with(
    approval: ApprovalStack, adapter: str, change: Callable[[Any], Any], *, reseal: bool
) -> str:
    """A copy of the lifecycle topic with `change` applied to `adapter`'s decision event;
    with `reseal`, that event and every later one of the adapter get fresh chain hashes."""
    records = approval.stack.records()
    copy = f"forged-{uuid.uuid4().hex[:10]}"
    admin = admin_client(approval.stack.infra.kafka)
    for future in admin.create_topics([NewTopic(copy, 3, 1)]).values():
        future.result()
    approval.stack.let_readers_read(copy)
    producer = make_producer(approval.stack.infra.kafka, partitioner="murmur2_random")
    prev_hash, changed = GENESIS_HASH, False
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        value = record.value
        event: Any = CODEC.decode(value or b"")
        if event.envelope.adapter == adapter:
            if isinstance(event, RevisionApproved | RevisionDenied):
                event, changed = change(event), True
            if reseal and changed:
                event = seal(event, seq=event.envelope.seq, prev_hash=prev_hash)
            value = CODEC.encode(event)
            prev_hash = event.envelope.hash
        producer.produce(copy, key=record.key, value=value, partition=record.partition)
    assert producer.flush(30) == 0 and changed
    return copy


def _with(event: Any, **fields: Any) -> Any:
    return dataclasses.replace(event, **fields)


def _flipped(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_the_signing_key_is_created_private_and_its_public_half_exported(
    approval: ApprovalStack,
) -> None:
    assert approval.key_path.stat().st_mode & 0o777 == 0o600
    with approval.client("audrey") as client:
        served = client.get("/api/v1/signing-key").json()
    assert served["public_key_pem"] == approval.public_key.read_text()
    assert served["key_id"].startswith("sha256:")


def test_every_decision_on_the_real_topic_verifies_against_the_services_public_key(
    approval: ApprovalStack,
    decided: Decided,
) -> None:
    status, report = verify(approval, approval.stack.lifecycle_topic, approval.public_key)
    assert (status, report["problems"]) == (0, [])
    plain = approval.stack.adapterctl(
        "audit",
        "verify",
        "--topic",
        approval.stack.lifecycle_topic,
        "--public-key",
        str(approval.public_key),
    )
    assert "every decision signed by a trusted key" in plain.stdout


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("a flipped signature bit", lambda e: _with(e, signature=_flipped(e.signature))),
        ("an approver slipped in", lambda e: _with(e, approvers=[*e.approvers, "mallory"])),
        ("a swapped report digest", lambda e: _with(e, report_digest="sha256:" + "0" * 64)),
    ],
)
def test_a_forged_approval_is_named_even_when_the_chain_was_resealed_around_it(
    approval: ApprovalStack,
    decided: Decided,
    what: str,
    change: Callable[[Any], Any],
) -> None:
    copy = copy_with(approval, decided.approved.adapter, change, reseal=True)
    unsigned_status, _ = verify(approval, copy)
    status, report = verify(approval, copy, approval.public_key)
    assert unsigned_status == 0, f"{what}: the resealed chain alone looks intact"
    assert status == 1
    assert [(p["code"], p["adapter"], p["event_type"]) for p in report["problems"]] == [
        ("signature_invalid", decided.approved.adapter, "RevisionApproved")
    ], what


def test_a_denial_altered_without_resealing_fails_both_its_hash_and_its_signature(
    approval: ApprovalStack,
    decided: Decided,
) -> None:
    copy = copy_with(
        approval, decided.denied.adapter, lambda e: _with(e, comment="fine"), reseal=False
    )
    status, report = verify(approval, copy, approval.public_key)
    codes = {p["code"] for p in report["problems"] if p["adapter"] == decided.denied.adapter}
    assert status == 1 and {"hash_mismatch", "signature_invalid"} <= codes


def test_decisions_signed_by_a_key_the_auditor_does_not_trust_are_named(
    approval: ApprovalStack,
    decided: Decided,
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    status, report = verify(approval, approval.stack.lifecycle_topic, other)
    unknown = {p["adapter"] for p in report["problems"] if p["code"] == "signature_unknown_key"}
    assert status == 1 and unknown == {decided.approved.adapter, decided.denied.adapter}
    trusting_both = verify(approval, approval.stack.lifecycle_topic, other, approval.public_key)
    assert trusting_both == (0, trusting_both[1]) and trusting_both[1]["problems"] == []


def test_a_public_key_file_that_is_not_a_key_is_a_usage_error(
    approval: ApprovalStack,
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    result = approval.stack.adapterctl(
        "audit",
        "verify",
        "--topic",
        approval.stack.lifecycle_topic,
        "--public-key",
        str(junk),
        check=False,
    )
    assert result.returncode == 2 and "junk.pub" in result.stderr
