"""Lifecycle events for any adapter, revision and environment, built from the samples."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.events import (
    RevisionActivated,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.logseal import event_headers
from shared.signing import Signer, claim_of, keyring, public_pem
from tests.samples import sample

# The approval key of the tests: every decision `lifecycle` builds is signed with it, as the
# approval service signs its own, so read models that believe only signed decisions take
# them. Stacks trust it through DECISION_PUBLIC_KEYS (`write_test_public_key`).
TEST_SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
TEST_DECISION_KEYS = keyring([TEST_SIGNER.public_key])

T = TypeVar("T")


def lifecycle(cls: type[T], adapter: str, revision: str, environment: str = "", **fields: Any) -> T:
    """A sample `cls` event about `adapter@revision`, with a fresh event id."""
    base: Any = sample(cls)
    envelope = dataclasses.replace(
        base.envelope,
        event_id=str(uuid.uuid4()),
        adapter=adapter,
        revision=revision,
        environment=environment,
        seq=0,
        prev_hash="",
        hash="",
    )
    event = dataclasses.replace(base, envelope=envelope, **fields)
    if isinstance(event, RevisionApproved | RevisionDenied):
        if "serving_contract" not in fields:  # made for no contract unless a test says
            event = dataclasses.replace(event, serving_contract="")
        if "signature" not in fields:
            event = signed(event)
    return event  # type: ignore[no-any-return]


def signed(event: T) -> T:
    """`event` (a decision) signed by the tests' approval key."""
    assert isinstance(event, RevisionApproved | RevisionDenied)
    signature = TEST_SIGNER.sign(claim_of(event))
    return dataclasses.replace(event, signature=signature, key_id=TEST_SIGNER.key_id)  # type: ignore[return-value]


# The log key of synthetic logs (tests that write the lifecycle topic themselves, as the
# relay would): `log_signed` gives the headers the relay adds.
TEST_LOG_SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64))))


def log_signed(event: Any) -> list[tuple[str, bytes]]:
    """The relay's signature headers for a sealed lifecycle event, by the tests' log key."""
    env = event.envelope
    return event_headers(TEST_LOG_SIGNER, env.adapter, env.seq, env.hash)


def write_test_log_key(folder: Path) -> Path:
    """The tests' log public key as a PEM file in `folder`, for LOG_PUBLIC_KEYS."""
    path = folder / "test-log.pub"
    path.write_bytes(public_pem(TEST_LOG_SIGNER.public_key))
    return path


def write_test_public_key(folder: Path) -> Path:
    """The tests' approval public key as a PEM file in `folder`, for DECISION_PUBLIC_KEYS."""
    path = folder / "test-decisions.pub"
    path.write_bytes(public_pem(TEST_SIGNER.public_key))
    return path


def to_validated(adapter: str, revision: str) -> list[Any]:
    return [
        lifecycle(RevisionRegistered, adapter, revision),
        lifecycle(RevisionValidated, adapter, revision),
    ]


def to_approved(adapter: str, revision: str, environment: str) -> list[Any]:
    return [
        *to_validated(adapter, revision),
        lifecycle(RevisionEvaluated, adapter, revision, environment),
        lifecycle(RevisionApproved, adapter, revision, environment),
    ]


def to_active(adapter: str, revision: str, environment: str) -> list[Any]:
    return [
        *to_approved(adapter, revision, environment),
        lifecycle(RevisionActivated, adapter, revision, environment),
    ]
