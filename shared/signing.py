"""Ed25519 signatures on approval decisions: keys, canonical bytes, and the audit's check.

The approval service signs every RevisionApproved / RevisionDenied over the canonical bytes
of what was decided (adapter, revision, environment, decision, manifest and report digests,
approvers, comment, and the digest of the environment's serving contract it was made
for); the signature and the signing key's id travel in the event, so an auditor holding
the public key proves each decision offline, from the log alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.audit import Checker, Entry
from shared.events import RevisionApproved, RevisionDenied
from shared.lifecycle import LifecycleEvent

DOMAIN = "adapters.approval-decision.v1"  # separates these signatures from any other use
APPROVED, DENIED = "approved", "denied"


class SigningKeyError(Exception):
    """A key file that cannot be used, and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionClaim:
    """What a signature vouches for; `approvers` of a denial is the one who denied."""

    adapter: str
    revision: str
    environment: str
    decision: str  # APPROVED or DENIED
    manifest_digest: str
    report_digest: str
    approvers: tuple[str, ...]
    comment: str
    # The digest of the environment's serving contract the decision was made for; signed
    # when given (decisions before it was recorded leave it out, so their bytes hold).
    serving_contract: str = ""

    def canonical_bytes(self) -> bytes:
        body: dict[str, object] = {
            "adapter": self.adapter,
            "approvers": list(self.approvers),
            "comment": self.comment,
            "decision": self.decision,
            "environment": self.environment,
            "manifest_digest": self.manifest_digest,
            "report_digest": self.report_digest,
            "revision": self.revision,
        }
        if self.serving_contract:
            body["serving_contract"] = self.serving_contract
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return f"{DOMAIN}\n{text}".encode()


def claim_of(event: RevisionApproved | RevisionDenied) -> DecisionClaim:
    """The claim a decision event's signature must cover, rebuilt from the event."""
    env = event.envelope
    if isinstance(event, RevisionApproved):
        decision, approvers = APPROVED, tuple(event.approvers)
    else:
        decision, approvers = DENIED, (env.actor.principal,)
    return DecisionClaim(
        adapter=env.adapter,
        revision=env.revision,
        environment=env.environment,
        decision=decision,
        manifest_digest=event.manifest_digest,
        report_digest=event.report_digest,
        approvers=approvers,
        comment=event.comment,
        serving_contract=event.serving_contract,
    )


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """`sha256:` and the hex SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True, slots=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, claim: DecisionClaim) -> str:
        """The base64 signature over the claim's canonical bytes."""
        return base64.b64encode(self.private_key.sign(claim.canonical_bytes())).decode()


def load_or_create_signer(path: Path) -> Signer:
    """The key in `path` (PEM, PKCS#8); created with mode 0600 when absent.

    The public key is (re)written beside it as `<path>.pub`, for auditors.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:  # O_EXCL: two first starts racing keep one key, the loser reads it back
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_signer(path)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        data = pem
    if path.stat().st_mode & 0o077:
        raise SigningKeyError(f"{path} is readable by others: chmod 600 it")
    try:
        key_obj = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key_obj, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key_obj).__name__}, not an Ed25519 key")
    signer = Signer(key_obj)
    public_path(path).write_bytes(public_pem(signer.public_key))
    return signer


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def load_public_key(data: bytes, source: str = "key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) bytes."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{source} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{source} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def keyring(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    return {key_id_of(k): k for k in keys}


def check_signature(
    event: RevisionApproved | RevisionDenied, keys: Mapping[str, Ed25519PublicKey]
) -> tuple[str, str] | None:
    """(code, message) when the event's signature does not prove its claim; None when it does."""
    key = keys.get(event.key_id)
    if key is None:
        known = ", ".join(sorted(keys)) or "none"
        message = f"signed by key {event.key_id!r}, not a trusted key (trusted: {known})"
        return "signature_unknown_key", message
    try:
        signature = base64.b64decode(event.signature, validate=True)
    except (binascii.Error, ValueError):
        return "signature_invalid", "the signature is not base64"
    try:
        key.verify(signature, claim_of(event).canonical_bytes())
    except InvalidSignature:
        return (
            "signature_invalid",
            f"the signature does not match the decision under key {event.key_id}: "
            "the decision was altered after signing, or forged",
        )
    return None


def signature_checker(keys: Sequence[Ed25519PublicKey]) -> Checker:
    """An audit Checker: every approval decision must carry a valid signature by a key given."""
    ring = keyring(keys)

    def check(_entry: Entry, event: LifecycleEvent) -> Iterator[tuple[str, str]]:
        if isinstance(event, RevisionApproved | RevisionDenied):
            problem = check_signature(event, ring)
            if problem is not None:
                yield problem

    return check
