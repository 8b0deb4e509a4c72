"""Believing a decision read off the log: what a read model checks before it projects a
RevisionApproved or RevisionDenied.

The lifecycle topic is written only by the registry's relay (Kafka's ACLs), but a read
model does not lean on that alone. A decision is believed when its Ed25519 signature
proves its claim under a trusted key (the approval service's public keys,
`DECISION_PUBLIC_KEYS`) and the registry committed that very decision: same event id, same
claim. What the read model then keeps is the registry's copy (its approvers, not the
event's). A refusal is a `PermanentError`, so the record is dead-lettered with its reason
and counted in `adapters_failures_total{reason="UntrustedDecision"}`; a second,
different decision for one (adapter, revision, environment) is `ConflictingDecision`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.events import RevisionApproved, RevisionDenied
from shared.kafka.dispatch import PermanentError
from shared.registry.port import Registry
from shared.signing import SigningKeyError, check_signature, claim_of, keyring, load_public_key

Decision = RevisionApproved | RevisionDenied
Keys = Mapping[str, Ed25519PublicKey]


class UntrustedDecision(PermanentError):
    """A decision whose signature does not prove it, or that the registry never committed."""


class ConflictingDecision(PermanentError):
    """A second decision for one (adapter, revision, environment) that says otherwise."""


def trusted_keys(paths: Iterable[Path], extra: Iterable[Ed25519PublicKey] = ()) -> Keys:
    """The public keys in `paths` (PEM files that exist; one not made yet is skipped), with
    `extra` (a service's own key). A file that holds no Ed25519 public key is an error."""
    keys = list(extra)
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        keys.append(load_public_key(data, str(path)))
    return keyring(keys)


def key_reader(paths: Iterable[Path], extra: Iterable[Ed25519PublicKey] = ()) -> Callable[[], Keys]:
    """`trusted_keys` read afresh on each call: the approval service may make its key after
    this service started, and a rotated key is trusted once its file is in place."""
    fixed, own = tuple(paths), tuple(extra)
    return lambda: trusted_keys(fixed, own)


async def believed(event: Decision, registry: Registry, keys: Keys) -> Decision:
    """The registry's committed copy of `event`, once its signature proves it; else
    UntrustedDecision naming why."""
    env = event.envelope
    problem = check_signature(event, keys)
    if problem is not None:
        code, message = problem
        raise UntrustedDecision(f"{code}: {message}")
    committed = [
        e
        for e in await registry.events(env.adapter, env.revision, types=(type(event),))
        if e.envelope.event_id == env.event_id
    ]
    if not committed:
        raise UntrustedDecision(
            f"decision_not_committed: the registry holds no {type(event).__name__} "
            f"{env.event_id} for {env.adapter}@{env.revision} in {env.environment}"
        )
    stored = committed[0]
    if not isinstance(stored, RevisionApproved | RevisionDenied):
        raise UntrustedDecision(f"decision_not_committed: {env.event_id} is no decision")
    if claim_of(stored) != claim_of(event):
        raise UntrustedDecision(
            f"decision_differs: {env.event_id} on the log says other than the registry's"
        )
    return stored


def conflict(kept: Iterable[str], believed_approvers: Iterable[str]) -> str | None:
    """Why a believed approval conflicts with the approvers already kept for its
    (adapter, revision, environment), or None when nothing was kept or they agree."""
    before, now = sorted(kept), sorted(believed_approvers)
    if not before or before == now:
        return None
    return f"conflicting_decision: approved by {now}, but {before} was recorded first"


__all__ = [
    "ConflictingDecision",
    "Decision",
    "Keys",
    "SigningKeyError",
    "UntrustedDecision",
    "believed",
    "conflict",
    "key_reader",
    "trusted_keys",
]
