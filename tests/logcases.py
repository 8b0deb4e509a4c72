"""Generated lifecycle logs, clean and tampered in every way the issue names, as auditor's
bundles: the differential tests hand each to both verifiers (ours and the independent one
in `verifiers/java/`), and the benchmarks verify a long one.

A history: three adapters over two partitions, revisions that canary, activate, supersede
and roll back, decisions signed by the approval key, every event signed by the log key as
the relay signs, checkpoints along the way, and a key rotation (checkpoint 2, signed by the
first key, names the second; checkpoint 3 is the second's). Each tampering then edits that
history as an insider with write access to the topic or to cold storage would.

    python -m tests.logcases OUT_DIR   # write every case as a bundle (and its keys) there
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import bundle
from shared.chain import FIRST_SEQ, GENESIS_HASH, seal
from shared.codec import Codec
from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionExpired,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.events.commands import AbortCanary
from shared.kafka.reader import LogRecord
from shared.logseal import (
    Checkpoint,
    Head,
    checkpoint_key,
    event_headers,
    parse_checkpoint,
    sign_checkpoint,
)
from shared.schemas import DEFAULT_SCHEMAS_DIR
from shared.signing import Signer, public_pem
from tests.factories import TEST_LOG_SIGNER, TEST_SIGNER, lifecycle, signed
from tests.samples import sample

TOPIC = "adapters.lifecycle.v1"
START = datetime(2026, 11, 1, tzinfo=UTC)
PROD, STAGING = "production", "staging"
KEY_2 = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96))))  # after rotation
OUTSIDER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128))))
CODEC = Codec.default()


def rev(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


@dataclasses.dataclass(frozen=True, slots=True)
class Link:
    """One record of the generated log: where it goes, its event, who signs it."""

    partition: int
    key: str | None
    event: Any  # sealed; or raw bytes / None for a record that is no event
    signer: Signer | None
    sign_as: tuple[str, int, str] | None = None  # sign another statement (a moved signature)


@dataclasses.dataclass(slots=True)
class Log:
    """A log under construction: records in log order, checkpoints by number."""

    links: list[Link]
    checkpoints: dict[int, bytes]

    def records(self) -> list[LogRecord]:
        offsets: dict[int, int] = {}
        out = []
        for link in sorted(self.links, key=lambda x: x.partition):  # stable: log order kept
            offset = offsets[link.partition] = offsets.get(link.partition, -1) + 1
            headers: tuple[tuple[str, bytes], ...] = ()
            if isinstance(link.event, bytes | None):  # a raw record (garbage, tombstone)
                value, stamp = link.event, START
            elif not hasattr(link.event, "envelope"):  # another topic's event
                value, stamp = CODEC.encode(link.event), START
            else:
                value, env = CODEC.encode(link.event), link.event.envelope
                statement = link.sign_as or (env.adapter, env.seq, env.hash)
                if link.signer is not None:
                    headers = tuple(event_headers(link.signer, *statement))
                stamp = env.occurred_at
            key = None if link.key is None else link.key.encode()
            millis = int(stamp.timestamp() * 1000)
            out.append(LogRecord(TOPIC, link.partition, offset, millis, key, value, headers))
        return out


# ---------------------------------------------------------------- the clean history


def _chains() -> dict[str, list[Any]]:
    """Each adapter's events, unsealed, in order."""

    def canary(adapter: str, revision: str, env: str, percent: int) -> Any:
        return lifecycle(CanaryStarted, adapter, revision, env, traffic_percent=percent)

    def activated(adapter: str, revision: str, env: str, previous: str | None) -> Any:
        return lifecycle(RevisionActivated, adapter, revision, env, previous_revision=previous)

    def registered(adapter: str, revision: str) -> list[Any]:
        return [
            lifecycle(RevisionRegistered, adapter, revision),
            lifecycle(RevisionValidated, adapter, revision),
        ]

    def approved(adapter: str, revision: str, env: str) -> list[Any]:
        return [
            lifecycle(RevisionEvaluated, adapter, revision, env),
            lifecycle(RevisionApproved, adapter, revision, env, comment="ship it — Zürich ✓"),
        ]

    alpha = [
        *registered("alpha", rev(1)),
        *approved("alpha", rev(1), PROD),
        activated("alpha", rev(1), PROD, None),
        *registered("alpha", rev(2)),
        *approved("alpha", rev(2), PROD),
        canary("alpha", rev(2), PROD, 10),
        lifecycle(CanaryExpanded, "alpha", rev(2), PROD, traffic_percent=50),
        activated("alpha", rev(2), PROD, rev(1)),
        lifecycle(RevisionSuperseded, "alpha", rev(1), PROD, superseded_by=rev(2)),
        lifecycle(RevisionRolledBack, "alpha", rev(2), PROD, restored_revision=rev(1)),
        activated("alpha", rev(1), PROD, rev(2)),
    ]
    beta = [
        *registered("beta", rev(3)),
        *approved("beta", rev(3), STAGING),
        canary("beta", rev(3), STAGING, 20),
        activated("beta", rev(3), STAGING, None),
        lifecycle(RevisionRegistered, "beta", rev(4)),
        lifecycle(RevisionRejected, "beta", rev(4)),
        lifecycle(RevisionExpired, "beta", rev(4)),
    ]
    gamma = [
        *registered("gamma", rev(5)),
        *approved("gamma", rev(5), PROD),
        activated("gamma", rev(5), PROD, None),
        *registered("gamma", rev(6)),
        *approved("gamma", rev(6), PROD),
        canary("gamma", rev(6), PROD, 25),
    ]
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


PARTITION = {"alpha": 0, "beta": 1, "gamma": 0}


def seal_chain(events: list[Any], first: int = FIRST_SEQ, prev: str = GENESIS_HASH) -> list[Any]:
    out = []
    for seq, event in enumerate(events, start=first):
        out.append(seal(event, seq=seq, prev_hash=prev))
        prev = out[-1].envelope.hash
    return out


def history(*, rotate: bool = True, checkpoints: bool = True) -> Log:
    """The clean log: events interleaved across adapters, an hour apart, with checkpoints
    after every fifth event (the rotation at checkpoint 2 when `rotate`)."""
    queues = {a: list(events) for a, events in _chains().items()}
    heads: dict[str, tuple[int, str]] = {}
    links: list[Link] = []
    docs: dict[int, bytes] = {}
    signer, previous, moment = TEST_LOG_SIGNER, "", START
    while any(queues.values()):
        for adapter in sorted(queues):
            if not queues[adapter]:
                continue
            event = queues[adapter].pop(0)
            moment += timedelta(hours=1)
            event = dataclasses.replace(
                event, envelope=dataclasses.replace(event.envelope, occurred_at=moment)
            )
            seq, prev = heads.get(adapter, (0, GENESIS_HASH))
            sealed = seal(event, seq=seq + 1, prev_hash=prev)
            heads[adapter] = (seq + 1, sealed.envelope.hash)
            links.append(Link(PARTITION[adapter], adapter, sealed, signer))
            if checkpoints and len(links) % 5 == 0 and len(docs) < 4:
                number = len(docs) + 1
                next_key = public_pem(KEY_2.public_key).decode() if rotate and number == 2 else ""
                cp = Checkpoint(
                    log=TOPIC,
                    number=number,
                    issued_at=moment.isoformat(timespec="milliseconds"),
                    previous=previous,
                    heads={a: Head(s, h) for a, (s, h) in heads.items()},
                    key_id="",
                    next_key=next_key,
                )
                done = sign_checkpoint(signer, cp)
                docs[number], previous = done.to_json(), done.checkpoint.digest
                if next_key:
                    signer = KEY_2  # the relays restart with the successor
    return Log(links, docs)


# ---------------------------------------------------------------- the tamperings


def _last(log: Log, adapter: str) -> int:
    return max(i for i, link in enumerate(log.links) if link.key == adapter)


def _index(log: Log, adapter: str, seq: int) -> int:
    return next(
        i
        for i, link in enumerate(log.links)
        if not isinstance(link.event, bytes | None)
        and hasattr(link.event, "envelope")
        and link.event.envelope.adapter == adapter
        and link.event.envelope.seq == seq
    )


def _append_forged(log: Log, signer: Signer | None, adapter: str = "gamma") -> Log:
    """An event a forger appends with seq, prev_hash and hash recomputed: the chain holds."""
    last = log.links[_last(log, adapter)].event.envelope
    forged = lifecycle(RevisionRolledBack, adapter, rev(6), PROD, restored_revision=rev(5))
    forged = dataclasses.replace(
        forged,
        envelope=dataclasses.replace(
            forged.envelope, occurred_at=last.occurred_at + timedelta(minutes=1)
        ),
    )
    sealed = seal(forged, seq=last.seq + 1, prev_hash=last.hash)
    log.links.append(Link(PARTITION[adapter], adapter, sealed, signer))
    return log


def _rewrite_from(log: Log, adapter: str, seq: int, change: Callable[[Any], Any]) -> Log:
    """Change one event and re-seal (and re-sign, with the current key) the chain after it."""
    positions = [
        i
        for i, link in enumerate(log.links)
        if link.key == adapter and link.event.envelope.seq >= seq
    ]
    prev = log.links[positions[0]].event.envelope.prev_hash
    for n, i in enumerate(positions):
        link = log.links[i]
        event = change(link.event) if n == 0 else link.event
        sealed = seal(event, seq=event.envelope.seq, prev_hash=prev)
        prev = sealed.envelope.hash
        log.links[i] = dataclasses.replace(link, event=sealed, signer=KEY_2)
    return log


def _rebacked(event: Any) -> Any:
    return dataclasses.replace(event, backend="edited-later")


def _replace_at(log: Log, index: int, **changes: Any) -> Log:
    log.links[index] = dataclasses.replace(log.links[index], **changes)
    return log


def _without_checkpoint(log: Log, number: int) -> Log:
    del log.checkpoints[number]
    return log


def _checkpoint_edited(log: Log, number: int, edit: Callable[[dict[str, Any]], None]) -> Log:
    doc = json.loads(log.checkpoints[number])
    edit(doc)
    log.checkpoints[number] = json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"
    return log


def _foreign_checkpoint(log: Log) -> Log:
    cp = Checkpoint(
        log=TOPIC,
        number=len(log.checkpoints) + 1,
        issued_at=(START + timedelta(days=30)).isoformat(timespec="milliseconds"),
        previous="",
        heads={},
        key_id="",
    )
    log.checkpoints[cp.number] = sign_checkpoint(OUTSIDER, cp).to_json()
    return log


def _non_lifecycle(log: Log) -> Log:
    command = sample(AbortCanary)
    log.links.append(Link(0, "alpha", command, None))
    return log


def _move(log: Log, adapter: str, seq: int, partition: int) -> Log:
    i = _index(log, adapter, seq)
    return _replace_at(log, i, partition=partition)


def _swap(log: Log, a: int, b: int) -> Log:
    log.links[a], log.links[b] = log.links[b], log.links[a]
    return log


def _duplicate(log: Log, adapter: str, seq: int) -> Log:
    log.links.append(log.links[_index(log, adapter, seq)])
    return log


def _seq_reused(log: Log) -> Log:
    held = log.links[_index(log, "beta", 3)].event
    other = lifecycle(RevisionEvaluated, "beta", rev(3), PROD)
    other = dataclasses.replace(
        other, envelope=dataclasses.replace(other.envelope, occurred_at=held.envelope.occurred_at)
    )
    log.links.append(Link(1, "beta", seal(other, seq=3, prev_hash=held.envelope.prev_hash), KEY_2))
    return log


def _id_reused(log: Log) -> Log:
    first_id = log.links[_index(log, "gamma", 1)].event.envelope.event_id

    def same_id(event: Any) -> Any:
        return dataclasses.replace(
            event, envelope=dataclasses.replace(event.envelope, event_id=first_id)
        )

    return _rewrite_from(log, "gamma", 4, same_id)


def _illegal(log: Log) -> Log:
    """Activation of a revision nobody approved, sealed and signed as if real."""
    last = log.links[_last(log, "beta")].event.envelope
    event = lifecycle(RevisionActivated, "beta", rev(4), STAGING, previous_revision=rev(3))
    event = dataclasses.replace(
        event,
        envelope=dataclasses.replace(event.envelope, occurred_at=last.occurred_at),
    )
    log.links.append(Link(1, "beta", seal(event, seq=last.seq + 1, prev_hash=last.hash), KEY_2))
    return log


def _forged_approval(log: Log) -> Log:
    """A decision whose comment was edited after the approval key signed it, the chain
    re-sealed and re-signed after it (only the decision's own signature gives it away)."""

    def resigned(event: Any) -> Any:
        edited = dataclasses.replace(event, comment="forged", signature="", key_id="")
        bogus = signed(edited)  # the test approval key signs, then the claim is changed
        return dataclasses.replace(bogus, comment="forged, then edited")

    return _rewrite_from(log, "gamma", 9, resigned)


def _hash_altered(log: Log) -> Log:
    """Bytes changed in place: the event no longer hashes to its `hash`."""
    i = _index(log, "alpha", 10)
    event = log.links[i].event
    altered = dataclasses.replace(event, traffic_percent=99)  # keeps the old hash
    return _replace_at(log, i, event=altered)


# name -> (tamper, codes both verifiers must report; empty: the log verifies)
Tamper = Callable[[Log], Log]
CASES: dict[str, tuple[Tamper, set[str]]] = {
    "clean": (lambda log: log, set()),
    "forged-unsigned": (lambda log: _append_forged(log, None), {"log_signature_missing"}),
    "forged-outsider-key": (
        lambda log: _append_forged(log, OUTSIDER),
        {"log_signature_unknown_key"},
    ),
    "forged-rotated-out-key": (
        lambda log: _append_forged(log, TEST_LOG_SIGNER),
        {"log_signature_retired_key"},
    ),
    "signature-moved": (lambda log: _moved_signature(log), {"log_signature_invalid"}),
    "dropped-tail": (lambda log: _drop(log, "alpha", 10), {"truncated"}),
    "rewritten-middle": (
        lambda log: _rewrite_from(log, "alpha", 3, _rebacked),
        {"checkpoint_mismatch"},
    ),
    "altered-in-place": (_hash_altered, {"hash_mismatch"}),
    "swapped-keys": (
        lambda log: _replace_at(log, _index(log, "beta", 2), key="gamma"),
        {"key_mismatch"},
    ),
    "reordered": (
        lambda log: _swap(log, _index(log, "beta", 5), _index(log, "beta", 6)),
        {"reordered"},
    ),
    "republished": (lambda log: _duplicate(log, "alpha", 4), set()),
    "garbage-and-tombstone": (
        lambda log: _garbage(log),
        {"undecodable"},
    ),
    "not-lifecycle": (_non_lifecycle, {"not_lifecycle"}),
    "partition-split": (lambda log: _move(log, "beta", 9, 0), {"partition_split"}),
    "illegal-transition": (_illegal, {"illegal_transition"}),
    "seq-reused": (_seq_reused, {"seq_reused"}),
    "event-id-reused": (_id_reused, {"event_id_reused"}),
    "gap": (lambda log: _remove(log, "gamma", 6), {"missing_seq"}),
    "forged-approval": (_forged_approval, {"signature_invalid"}),
    "checkpoint-deleted": (lambda log: _without_checkpoint(log, 3), {"checkpoint_missing"}),
    "checkpoint-signature": (
        lambda log: _checkpoint_edited(log, 1, lambda d: d["checkpoint"].update(issued_at="x")),
        {"checkpoint_signature_invalid"},
    ),
    "checkpoint-chain": (
        lambda log: _checkpoint_resigned(log, 3, previous="sha256:" + "0" * 64),
        {"checkpoint_chain_broken"},
    ),
    "checkpoint-foreign-key": (_foreign_checkpoint, {"checkpoint_unknown_key"}),
    "checkpoint-unreadable": (
        lambda log: _checkpoint_bytes(log, 4, b"{not json"),
        {"checkpoint_unreadable"},
    ),
    "checkpoint-other-log": (
        lambda log: _checkpoint_resigned(log, 4, log_name="adapters.other.v1"),
        {"checkpoint_foreign"},
    ),
    "no-checkpoints": (lambda log: _no_checkpoints(log), set()),
    "trailing-bytes": (
        lambda log: _raw_edit(log, "beta", 9, lambda v: v + b"\x00"),
        {"undecodable"},
    ),
    "unknown-fingerprint": (
        lambda log: _raw_edit(log, "gamma", 10, lambda v: v[:2] + b"\xff" * 8 + v[10:]),
        {"undecodable"},
    ),
    "invalid-utf8": (
        lambda log: _raw_edit(log, "alpha", 15, lambda v: v.replace(b"alpha", b"alph\xff", 1)),
        {"undecodable"},
    ),
}


def _raw_edit(log: Log, adapter: str, seq: int, edit: Callable[[bytes], bytes]) -> Log:
    """The record's value bytes edited in place, below the Avro level."""
    i = _index(log, adapter, seq)
    return _replace_at(log, i, event=edit(CODEC.encode(log.links[i].event)))


def _moved_signature(log: Log) -> Log:
    """The signature of one event copied onto another (valid, but for another statement)."""
    i, j = _index(log, "gamma", 10), _index(log, "gamma", 9)
    env = log.links[j].event.envelope
    return _replace_at(log, i, sign_as=(env.adapter, env.seq, env.hash))


def _drop(log: Log, adapter: str, count: int) -> Log:
    for _ in range(count):
        del log.links[_last(log, adapter)]
    return log


def _remove(log: Log, adapter: str, seq: int) -> Log:
    del log.links[_index(log, adapter, seq)]
    return log


def _garbage(log: Log) -> Log:
    log.links.append(Link(1, "beta", b"\xc3\x01not avro at all", None))
    log.links.append(Link(1, "beta", None, None))
    return log


def _checkpoint_bytes(log: Log, number: int, data: bytes) -> Log:
    log.checkpoints[number] = data
    return log


def _checkpoint_resigned(log: Log, number: int, **changes: Any) -> Log:
    """Checkpoint `number` edited and re-signed by its own key (so only its content is off)."""
    cp = parse_checkpoint(log.checkpoints[number]).checkpoint
    if "log_name" in changes:
        changes["log"] = changes.pop("log_name")
    signer = KEY_2 if number >= 3 else TEST_LOG_SIGNER
    log.checkpoints[number] = sign_checkpoint(signer, dataclasses.replace(cp, **changes)).to_json()
    return log


def _no_checkpoints(_log: Log) -> Log:
    """A history from before checkpoints and rotation: every event rests on its signature."""
    return history(rotate=False, checkpoints=False)


def build(name: str) -> Log:
    tamper, _ = CASES[name]
    return tamper(history())


def write_bundle(folder: Path, log: Log, *, keys: bool = True) -> Path:
    """`log` as an auditor's bundle in `folder` (with the trusted keys when `keys`)."""
    bundle.write(
        folder,
        topic=TOPIC,
        records=log.records(),
        checkpoints=[(checkpoint_key(TOPIC, n), d) for n, d in sorted(log.checkpoints.items())],
        log_keys=[("log.pem", public_pem(TEST_LOG_SIGNER.public_key))] if keys else [],
        approval_keys=[("approval.pem", public_pem(TEST_SIGNER.public_key))] if keys else [],
        schemas=DEFAULT_SCHEMAS_DIR,
        until=START + timedelta(days=365),
        exported_at=START + timedelta(days=365),
    )
    return folder


def write_keys(folder: Path) -> tuple[Path, Path]:
    """The trusted log key (the first one: rotation is followed) and approval key, as PEM."""
    folder.mkdir(parents=True, exist_ok=True)
    log_key, approval_key = folder / "log.pub", folder / "approval.pub"
    log_key.write_bytes(public_pem(TEST_LOG_SIGNER.public_key))
    approval_key.write_bytes(public_pem(TEST_SIGNER.public_key))
    return log_key, approval_key


def long_history(events: int) -> Log:
    """A log of about `events` events (many adapters, each a canary-and-activate story),
    checkpointed every 1000 events: the benchmarks' input."""
    links: list[Link] = []
    docs: dict[int, bytes] = {}
    heads: dict[str, tuple[int, str]] = {}
    previous, moment, n = "", START, 0
    story = _chains()["alpha"]
    while len(links) < events:
        adapter = f"adapter-{n:05d}"
        n += 1
        chain = [
            dataclasses.replace(
                e,
                envelope=dataclasses.replace(
                    e.envelope, adapter=adapter, event_id=f"{adapter}-{i}", occurred_at=moment
                ),
            )
            for i, e in enumerate(story)
        ]
        for event in seal_chain(chain):
            links.append(Link(n % 3, adapter, event, TEST_LOG_SIGNER))
            heads[adapter] = (event.envelope.seq, event.envelope.hash)
            if len(links) % 1000 == 0:
                number = len(docs) + 1
                cp = Checkpoint(
                    log=TOPIC,
                    number=number,
                    issued_at=moment.isoformat(timespec="milliseconds"),
                    previous=previous,
                    heads={a: Head(s, h) for a, (s, h) in heads.items()},
                    key_id="",
                )
                done = sign_checkpoint(TEST_LOG_SIGNER, cp)
                docs[number], previous = done.to_json(), done.checkpoint.digest
        moment += timedelta(minutes=1)
    return Log(links, docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    write_keys(args.out / "keys")
    for name in CASES:
        write_bundle(args.out / name, build(name))
    print(f"wrote {len(CASES)} bundles and keys/ into {args.out}")


if __name__ == "__main__":
    main()
