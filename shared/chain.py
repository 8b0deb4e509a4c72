"""The per-adapter hash chain over lifecycle events: canonical bytes, sealing, link checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shared.codec import to_record

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

GENESIS_HASH = ""
FIRST_SEQ = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

E = TypeVar("E", bound="DataclassInstance")


def canonical_bytes(full_name: str, record: Mapping[str, Any]) -> bytes:
    """`full_name`, a newline, then the record as deterministic JSON without `envelope.hash`.

    Sorted keys, no whitespace, ASCII only (JSON escapes beyond it), floats as `repr` (NaN and
    infinities as `NaN`/`Infinity`), datetimes as integer microseconds since the epoch
    (what Avro stores), bytes as hex: any reader in any language can rebuild these bytes
    from the record it decoded.
    """
    envelope = record.get("envelope")
    if not isinstance(envelope, Mapping):
        raise ValueError(f"{full_name} record has no envelope to chain")
    unhashed = {**record, "envelope": {k: v for k, v in envelope.items() if k != "hash"}}
    body = json.dumps(
        unhashed, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_plain
    )
    return f"{full_name}\n{body}".encode()


def compute_hash(prev_hash: str, full_name: str, record: Mapping[str, Any]) -> str:
    """SHA-256 hex over the previous link's hash, a newline, and the canonical bytes."""
    digest = hashlib.sha256(f"{prev_hash}\n".encode())
    digest.update(canonical_bytes(full_name, record))
    return digest.hexdigest()


def seal(event: E, *, seq: int, prev_hash: str) -> E:
    """A copy of a lifecycle event placed at `seq` after `prev_hash`, with its own hash."""
    source: Any = event  # every lifecycle event has `envelope` and `SCHEMA`; E cannot say so
    unsealed = dataclasses.replace(source.envelope, seq=seq, prev_hash=prev_hash, hash="")
    placed = dataclasses.replace(event, envelope=unsealed)
    digest = compute_hash(prev_hash, source.SCHEMA, to_record(placed))
    return dataclasses.replace(placed, envelope=dataclasses.replace(unsealed, hash=digest))


def verify_link(
    prev_hash: str, expected_seq: int, full_name: str, record: Mapping[str, Any]
) -> str | None:
    """What is wrong with this link, given the one before it; None when it holds."""
    envelope = record.get("envelope")
    if not isinstance(envelope, Mapping):
        return f"{full_name} has no envelope"
    problems = []
    if envelope.get("seq") != expected_seq:
        problems.append(f"seq is {envelope.get('seq')!r}, expected {expected_seq}")
    if envelope.get("prev_hash") != prev_hash:
        problems.append(
            f"prev_hash {envelope.get('prev_hash')!r} is not the previous hash {prev_hash!r}"
        )
    # Hash against the link's own prev_hash: a moved or orphaned event then reads as
    # misplaced but intact, and only an altered one reads as a hash mismatch.
    own_prev = envelope.get("prev_hash")
    computed = compute_hash(own_prev if isinstance(own_prev, str) else prev_hash, full_name, record)
    if envelope.get("hash") != computed:
        problems.append(f"hash {envelope.get('hash')!r} is not the computed {computed!r}")
    if not problems:
        return None
    return f"{full_name} {envelope.get('event_id')!r}: " + "; ".join(problems)


def _plain(value: object) -> object:
    """JSON for the types the json module does not know; anything else is a bug upstream."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be hashed")
        return (value - _EPOCH) // _MICROSECOND
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"cannot hash a {type(value).__name__}")
