"""Ed25519 decision signatures: keys on disk, canonical claims, and the audit's check."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from shared.audit import Entry, Position, read_entry, verify
from shared.chain import FIRST_SEQ, GENESIS_HASH, seal
from shared.codec import Codec
from shared.events import RevisionApproved, RevisionDenied
from shared.signing import (
    Signer,
    SigningKeyError,
    check_signature,
    claim_of,
    key_id_of,
    keyring,
    load_or_create_signer,
    load_public_key,
    public_path,
    public_pem,
    signature_checker,
)
from tests.factories import lifecycle, to_approved

CODEC = Codec.default()
REVISION = "sha256:" + "a" * 64
SIGNER = Signer(Ed25519PrivateKey.generate())


def signed(event: Any, signer: Signer = SIGNER) -> Any:
    unsigned = dataclasses.replace(event, key_id=signer.key_id)
    return dataclasses.replace(unsigned, signature=signer.sign(claim_of(unsigned)))


def approved(**fields: Any) -> RevisionApproved:
    event = lifecycle(RevisionApproved, "summarizer", REVISION, "production", **fields)
    result: RevisionApproved = signed(event)
    return result


def test_a_new_key_is_written_private_and_its_public_half_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    signer = load_or_create_signer(path)
    assert path.stat().st_mode & 0o777 == 0o600
    public = load_public_key(public_path(path).read_bytes())
    assert key_id_of(public) == signer.key_id
    assert load_or_create_signer(path).key_id == signer.key_id  # the second start reuses it


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    load_or_create_signer(path)
    os.chmod(path, 0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_or_create_signer(path)


def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rsa.key"
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        rsa.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_or_create_signer(path)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_public_key(public_pem_of(rsa))


def public_pem_of(key: Any) -> bytes:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def test_the_key_id_is_the_sha256_of_the_raw_public_key() -> None:
    import hashlib

    raw = SIGNER.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert SIGNER.key_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_a_signed_approval_and_a_signed_denial_verify() -> None:
    denial = signed(lifecycle(RevisionDenied, "summarizer", REVISION, "production"))
    ring = keyring([SIGNER.public_key])
    assert check_signature(approved(), ring) is None
    assert check_signature(denial, ring) is None


@pytest.mark.parametrize(
    "change",
    [
        {"approvers": ["bob", "mallory"]},
        {"comment": "edited"},
        {"manifest_digest": "sha256:" + "0" * 64},
        {"report_digest": "sha256:" + "0" * 64},
    ],
    ids=["approvers", "comment", "manifest", "report"],
)
def test_any_change_to_what_was_decided_breaks_the_signature(change: dict[str, Any]) -> None:
    event = approved(approvers=["bob"])
    problem = check_signature(dataclasses.replace(event, **change), keyring([SIGNER.public_key]))
    assert problem is not None and problem[0] == "signature_invalid"


@pytest.mark.parametrize("where", ["adapter", "revision", "environment"])
def test_a_signature_moved_to_another_revision_or_environment_does_not_verify(
    where: str,
) -> None:
    event = approved()
    moved = dataclasses.replace(
        event, envelope=dataclasses.replace(event.envelope, **{where: "elsewhere"})
    )
    problem = check_signature(moved, keyring([SIGNER.public_key]))
    assert problem is not None and problem[0] == "signature_invalid"


def test_an_approval_signature_does_not_pass_as_a_denial() -> None:
    event = approved(approvers=["bob"])
    envelope = dataclasses.replace(
        event.envelope, actor=dataclasses.replace(event.envelope.actor, principal="bob")
    )
    as_denial = RevisionDenied(
        envelope=envelope,
        manifest_digest=event.manifest_digest,
        report_digest=event.report_digest,
        comment=event.comment,
        signature=event.signature,
        key_id=event.key_id,
    )
    problem = check_signature(as_denial, keyring([SIGNER.public_key]))
    assert problem is not None and problem[0] == "signature_invalid"


def test_an_unknown_key_and_a_garbled_signature_are_named() -> None:
    other = Signer(Ed25519PrivateKey.generate())
    unknown = check_signature(approved(), keyring([other.public_key]))
    garbled = check_signature(
        dataclasses.replace(approved(), signature="%%%"), keyring([SIGNER.public_key])
    )
    assert unknown is not None and unknown[0] == "signature_unknown_key"
    assert garbled == ("signature_invalid", "the signature is not base64")


def test_the_claims_canonical_bytes_do_not_depend_on_field_order_or_non_ascii() -> None:
    claim = claim_of(approved(comment="naïve ✓"))
    assert claim.canonical_bytes().startswith(b"adapters.approval-decision.v1\n{")
    assert claim.canonical_bytes().isascii()
    assert claim.canonical_bytes() == dataclasses.replace(claim).canonical_bytes()


def _entries(events: list[Any], partition: int) -> list[Entry]:
    sealed, prev = [], GENESIS_HASH
    for seq, event in enumerate(events, start=FIRST_SEQ):
        sealed.append(seal(event, seq=seq, prev_hash=prev))
        prev = sealed[-1].envelope.hash
    return [
        read_entry(CODEC, Position("t", partition, i), e.envelope.adapter.encode(), CODEC.encode(e))
        for i, e in enumerate(sealed)
    ]


def test_the_audit_checker_reports_only_the_forged_decision_of_an_intact_chain() -> None:
    good = [*to_approved("alpha", REVISION, "production")]
    good[-1] = signed(good[-1])
    forged = [*to_approved("beta", REVISION, "production")]
    forged[-1] = dataclasses.replace(signed(forged[-1]), approvers=["mallory"])
    entries = _entries(good, 0) + _entries(forged, 1)
    report = verify(entries, [signature_checker([SIGNER.public_key])])
    assert [(p.code, p.adapter, p.event_type) for p in report.problems] == [
        ("signature_invalid", "beta", "RevisionApproved")
    ]
    assert verify(entries).ok  # the chain alone cannot tell


def test_the_public_key_round_trips_through_pem() -> None:
    assert key_id_of(load_public_key(public_pem(SIGNER.public_key))) == SIGNER.key_id
