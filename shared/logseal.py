"""The lifecycle log's seal: the registry's signature on every event, and signed checkpoints.

A hash chain alone proves nothing against someone who can write to the topic: they
recompute `seq`, `prev_hash` and `hash` for a forged event and the chain holds. So the
registry's outbox relay, the only publisher of the log, signs each event it publishes
(Ed25519, the statement below, carried in two Kafka headers), and on a schedule (and
after each archive) signs a **checkpoint**: every adapter's chain head at that moment,
numbered and linked to the checkpoint before it, written once to cold storage. Like
Certificate Transparency's signed tree heads or a Rekor checkpoint, a checkpoint commits
the log's past: a rewritten middle changes the head hash it vouched for, a dropped tail
leaves a head the log no longer reaches, and events after the newest checkpoint are
reported as not yet anchored.

Key rotation is itself a checkpoint: signed by the outgoing key, it names the incoming
key (`next_key`), so an auditor who trusts the first key follows every rotation, and
events signed by retired keys stay verifiable.

Pure: bytes in, findings out; the relay and `adapterctl audit verify` do the I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.audit import Checker, Entry, Position, Problem
from shared.lifecycle import LifecycleEvent
from shared.signing import Signer, SigningKeyError, key_id_of, load_public_key, public_pem

EVENT_DOMAIN = "adapters.log-event.v1"
CHECKPOINT_SCHEMA = "adapters.log-checkpoint.v1"
SIGNATURE_HEADER = "log_signature"  # base64 Ed25519 signature over `event_statement`
KEY_HEADER = "log_key_id"  # `sha256:` + hex SHA-256 of the raw public key
CHECKPOINT_PREFIX = "checkpoints"


def event_statement(adapter: str, seq: int, event_hash: str) -> bytes:
    """What an event signature vouches for: this adapter's link `seq` has this hash.

    The hash covers the whole event (its canonical bytes and the previous link's hash),
    so signing it signs the event and its place in the chain.
    """
    return f"{EVENT_DOMAIN}\n{adapter}\n{seq}\n{event_hash}".encode()


def event_headers(
    signer: Signer, adapter: str, seq: int, event_hash: str
) -> list[tuple[str, bytes]]:
    signature = signer.private_key.sign(event_statement(adapter, seq, event_hash))
    return [
        (SIGNATURE_HEADER, base64.b64encode(signature)),
        (KEY_HEADER, signer.key_id.encode()),
    ]


def event_signature_problem(
    headers: Mapping[str, bytes],
    event: LifecycleEvent,
    ring: Mapping[str, Ed25519PublicKey],
    anchored: Mapping[str, int] | None = None,
    *,
    every: bool = False,
    retired: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[str, str] | None:
    """(code, message) when the record's headers do not prove the registry published it.

    An event at or below a checkpointed head of its adapter (`anchored`) is proven by that
    checkpoint, as a signed tree head proves its entries: its hash chain leads to the signed
    head (which `anchor` holds the log to), so its own signature adds nothing and is not
    checked unless `every`; history published before the log was signed is sealed by the
    first checkpoint that way. An unsigned one is accepted there even with `every`.
    """
    signature, key_id = headers.get(SIGNATURE_HEADER), headers.get(KEY_HEADER)
    env = event.envelope
    if env.seq <= (anchored or {}).get(env.adapter, 0) and (
        not every or (signature is None and key_id is None)
    ):
        return None
    if signature is None or key_id is None:
        return (
            "log_signature_missing",
            "no registry signature: the relay signs every event it publishes, so this one "
            "was written to the topic by something else",
        )
    key = ring.get(key_id.decode(errors="replace"))
    if key is None:
        known = ", ".join(sorted(ring)) or "none"
        return (
            "log_signature_unknown_key",
            f"signed by key {key_id.decode(errors='replace')!r}, not a log key (trusted: {known})",
        )
    if not _verifies(key, signature, event_statement(env.adapter, env.seq, env.hash)):
        return (
            "log_signature_invalid",
            "the registry's signature does not match this event's adapter, seq and hash: "
            "forged, or altered after publishing",
        )
    since = (retired or {}).get(key_id.decode(errors="replace"))
    if since is not None and env.seq > since.get(env.adapter, 0):
        return (
            "log_signature_retired_key",
            f"signed by {key_id.decode(errors='replace')}, a key its successor replaced at a "
            f"checkpoint that saw this adapter at seq {since.get(env.adapter, 0)}: whoever "
            "signed this still holds a retired key",
        )
    return None


def event_signature_checker(
    ring: Mapping[str, Ed25519PublicKey],
    anchored: Mapping[str, int] | None = None,
    *,
    every: bool = False,
    retired: Mapping[str, Mapping[str, int]] | None = None,
) -> Checker:
    """An audit Checker: every lifecycle event past the checkpoints (`anchored_heads`; all of
    them with `every`) must carry a valid registry signature by a key not yet retired
    (`retired_keys`)."""

    def check(entry: Entry, event: LifecycleEvent) -> Iterator[tuple[str, str]]:
        problem = event_signature_problem(
            entry.headers, event, ring, anchored, every=every, retired=retired
        )
        if problem is not None:
            yield problem

    return check


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The log's state as its publisher vouches for it: every adapter's chain head."""

    log: str  # the lifecycle topic
    number: int  # 1, 2, ...: a missing number is a missing checkpoint
    issued_at: str  # RFC 3339, UTC
    previous: str  # the digest of checkpoint `number - 1`; "" for the first
    heads: Mapping[str, Head]
    key_id: str  # the key that signs this checkpoint
    next_key: str = ""  # PEM of the key that signs from the next checkpoint on (a rotation)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schema": CHECKPOINT_SCHEMA,
            "log": self.log,
            "number": self.number,
            "issued_at": self.issued_at,
            "previous": self.previous,
            "heads": {a: {"seq": h.seq, "hash": h.hash} for a, h in sorted(self.heads.items())},
            "key_id": self.key_id,
        }
        if self.next_key:
            body["next_key"] = self.next_key
        return body

    def canonical_bytes(self) -> bytes:
        """The schema name, a newline, the body as sorted, compact, ASCII JSON: what is signed."""
        text = json.dumps(self.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return f"{CHECKPOINT_SCHEMA}\n{text}".encode()

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: str  # base64

    def to_json(self) -> bytes:
        doc = {"checkpoint": self.checkpoint.body(), "signature": self.signature}
        return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"


class CheckpointError(ValueError):
    """Bytes that are not a checkpoint, and why."""


def checkpoint_key(log: str, number: int) -> str:
    """Where checkpoint `number` of `log` lives in cold storage (zero-padded: sorts by name)."""
    return f"{CHECKPOINT_PREFIX}/{log}/{number:012d}.json"


def sign_checkpoint(signer: Signer, checkpoint: Checkpoint) -> SignedCheckpoint:
    checkpoint = replace(checkpoint, key_id=signer.key_id)
    signature = signer.private_key.sign(checkpoint.canonical_bytes())
    return SignedCheckpoint(checkpoint, base64.b64encode(signature).decode())


def rotation_checkpoint(base: Checkpoint, next_key: Ed25519PublicKey) -> Checkpoint:
    """`base` announcing the key that signs from the next checkpoint on."""
    return replace(base, next_key=public_pem(next_key).decode())


def parse_checkpoint(data: bytes) -> SignedCheckpoint:
    try:
        doc = json.loads(data)
        body, signature = doc["checkpoint"], doc["signature"]
        if body.get("schema") != CHECKPOINT_SCHEMA:
            raise CheckpointError(f"schema is {body.get('schema')!r}, not {CHECKPOINT_SCHEMA}")
        heads = {str(a): Head(int(h["seq"]), str(h["hash"])) for a, h in body["heads"].items()}
        checkpoint = Checkpoint(
            log=str(body["log"]),
            number=int(body["number"]),
            issued_at=str(body["issued_at"]),
            previous=str(body["previous"]),
            heads=heads,
            key_id=str(body["key_id"]),
            next_key=str(body.get("next_key", "")),
        )
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"not a checkpoint: {type(exc).__name__}: {exc}") from exc
    return SignedCheckpoint(checkpoint, str(signature))


@dataclass(frozen=True, slots=True)
class Anchoring:
    """What the checkpoints say about the log: problems, and what they do not yet cover."""

    problems: list[Problem]
    checkpoints: int  # valid checkpoints read
    latest: int  # the newest valid checkpoint's number; 0 when there is none
    unanchored: tuple[Entry, ...]  # accepted events past the newest checkpoint's heads
    ring: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)  # keys learned too


def follow_checkpoints(
    log: str,
    documents: Iterable[tuple[str, bytes]],
    trusted: Mapping[str, Ed25519PublicKey],
) -> tuple[list[Problem], list[Checkpoint], dict[str, Ed25519PublicKey]]:
    """Check the checkpoint chain: each parses, is signed by a key trusted by then, is
    numbered one past the previous one and names its digest. Returns the problems, the
    valid checkpoints in order, and the key ring grown by every announced rotation."""
    ring = dict(trusted)
    problems: list[Problem] = []
    valid: list[Checkpoint] = []
    previous: Checkpoint | None = None

    def report(name: str, code: str, message: str) -> None:
        problems.append(Problem(Position(name, 0, 0), code, message))

    for name, data in sorted(documents):
        try:
            signed = parse_checkpoint(data)
        except CheckpointError as exc:
            report(name, "checkpoint_unreadable", str(exc))
            continue
        cp = signed.checkpoint
        key = ring.get(cp.key_id)
        if cp.log != log:
            report(name, "checkpoint_foreign", f"checkpoint of log {cp.log!r}, not {log!r}")
            continue
        if key is None:
            report(name, "checkpoint_unknown_key", f"signed by {cp.key_id!r}, not a log key")
            continue
        if not _verifies(key, signed.signature.encode(), cp.canonical_bytes()):
            report(name, "checkpoint_signature_invalid", "the signature does not match the body")
            continue
        expected = previous.number + 1 if previous else 1
        if cp.number != expected:
            report(
                name,
                "checkpoint_missing",
                f"checkpoint {cp.number} follows {expected - 1}: checkpoints "
                f"{expected}-{cp.number - 1} are gone",
            )
        elif cp.previous != (previous.digest if previous else ""):
            report(
                name,
                "checkpoint_chain_broken",
                f"previous {cp.previous!r} is not the digest of checkpoint {expected - 1}",
            )
        if cp.next_key:
            try:
                announced = load_public_key(cp.next_key.encode(), f"{name} next_key")
            except SigningKeyError as exc:
                report(name, "checkpoint_unreadable", str(exc))
            else:
                ring[key_id_of(announced)] = announced
        valid.append(cp)
        previous = cp
    return problems, valid, ring


def anchored_heads(checkpoints: Iterable[Checkpoint]) -> dict[str, int]:
    """Each adapter's highest seq any valid checkpoint vouched for."""
    heads: dict[str, int] = {}
    for cp in checkpoints:
        for adapter, head in cp.heads.items():
            heads[adapter] = max(heads.get(adapter, 0), head.seq)
    return heads


def retired_keys(checkpoints: Iterable[Checkpoint]) -> dict[str, dict[str, int]]:
    """Each retired log key, with the heads (adapter -> seq) of the checkpoint that retired it.

    A rotation checkpoint signed by key K names its successor K' (`next_key`); the relays
    keep signing with K until they restart with K'. The first valid checkpoint signed by K'
    shows they have: K retires there, and an event past that checkpoint's head of its
    adapter that K signed was signed by someone still holding the old key (stolen, or a
    relay left running on it).
    """
    successor_of: dict[str, str] = {}  # key id -> the key id it announced
    retired: dict[str, dict[str, int]] = {}
    for cp in checkpoints:
        for old, new in successor_of.items():
            if new == cp.key_id and old not in retired:
                retired[old] = {adapter: head.seq for adapter, head in cp.heads.items()}
        if cp.next_key:
            try:
                announced = load_public_key(cp.next_key.encode(), "next_key")
            except SigningKeyError:
                continue  # follow_checkpoints reports it
            successor_of[cp.key_id] = key_id_of(announced)
    return retired


def anchor(
    log: str,
    accepted: Sequence[Entry],
    documents: Iterable[tuple[str, bytes]],
    trusted: Mapping[str, Ed25519PublicKey],
) -> Anchoring:
    """Hold the log's accepted links against every valid checkpoint's heads.

    A head whose seq the log does not reach: `truncated` (a dropped tail). A head whose
    hash differs from the log's link at that seq: `checkpoint_mismatch` (a rewritten
    history: the hash chain carries any change up to the head).
    """
    problems, checkpoints, ring = follow_checkpoints(log, documents, trusted)
    links: dict[str, dict[int, Entry]] = {}
    for entry in accepted:
        if entry.event is not None:
            env = entry.event.envelope
            links.setdefault(env.adapter, {})[env.seq] = entry
    reported: set[tuple[str, str]] = set()
    for cp in checkpoints:
        where = Position(checkpoint_key(log, cp.number), 0, 0)
        for adapter, head in sorted(cp.heads.items()):
            chain = links.get(adapter, {})
            held = chain.get(head.seq)
            if held is None and (adapter, "truncated") not in reported:
                reported.add((adapter, "truncated"))
                last = max(chain, default=0)
                at = chain[last].position if last else where
                problems.append(
                    Problem(
                        at,
                        "truncated",
                        f"checkpoint {cp.number} ({cp.issued_at}) saw adapter {adapter!r} at "
                        f"seq {head.seq}; the log ends at seq {last}: events were dropped",
                        adapter,
                        last or None,
                    )
                )
            elif held is not None and held.event is not None:
                env = held.event.envelope
                if env.hash != head.hash and (adapter, f"m{head.seq}") not in reported:
                    reported.add((adapter, f"m{head.seq}"))
                    problems.append(
                        Problem(
                            held.position,
                            "checkpoint_mismatch",
                            f"checkpoint {cp.number} ({cp.issued_at}) vouched for hash "
                            f"{head.hash[:16]} at seq {head.seq}, the log holds {env.hash[:16]}: "
                            "the history up to here was rewritten",
                            adapter,
                            head.seq,
                            env.event_id,
                            type(held.event).__name__,
                        )
                    )
    newest = checkpoints[-1] if checkpoints else None
    unanchored = tuple(
        entry
        for entry in accepted
        if entry.event is not None
        and (
            newest is None
            or entry.event.envelope.seq
            > newest.heads.get(entry.event.envelope.adapter, Head(0, "")).seq
        )
    )
    return Anchoring(problems, len(checkpoints), newest.number if newest else 0, unanchored, ring)


def _verifies(key: Ed25519PublicKey, signature_b64: bytes, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
