"""The auditor's bundle (`docs/log-format.md` §11): the lifecycle log, its checkpoints, keys
and schemas in one folder that an outside auditor verifies offline, with our verifier or
with any other written from the specification (`verifiers/java/logcheck`).

The bundle is evidence only through what it holds: records are proven by their hash chain,
their signatures and the checkpoints, never by the bundle itself. `bundle.json` lists a
digest per file so that a damaged copy is noticed (`bundle_damaged`), and the keys it
carries are a convenience: an auditor trusts the log key they obtained from its owner, not
one that came in the same folder as the log.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from shared.kafka.reader import LogRecord
from shared.logseal import CHECKPOINT_PREFIX, parse_checkpoint

FORMAT = "adapters.audit-bundle.v1"
INDEX = "bundle.json"
RECORDS = "records.jsonl"
LOG_KEYS = "keys"
APPROVAL_KEYS = "keys/approval"


class BundleError(Exception):
    """A folder that is not a bundle, or one that cannot be written."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle as read: its records and checkpoints, and every damaged file found."""

    topic: str
    records: tuple[LogRecord, ...]
    checkpoints: tuple[tuple[str, bytes], ...]  # (name under cold storage, bytes)
    log_keys: tuple[tuple[str, bytes], ...]  # (file name, PEM): untrusted until told
    approval_keys: tuple[tuple[str, bytes], ...]
    until: str
    exported_at: str
    damaged: tuple[tuple[str, str], ...] = field(default=())  # (path, what is wrong)


def record_json(record: LogRecord) -> str:
    """One line of `records.jsonl`."""

    def b64(data: bytes | None) -> str | None:
        return None if data is None else base64.b64encode(data).decode()

    return json.dumps(
        {
            "partition": record.partition,
            "offset": record.offset,
            "timestamp_ms": record.timestamp_ms,
            "key": b64(record.key),
            "value": b64(record.value),
            "headers": [[name, b64(value)] for name, value in record.headers],
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def parse_record(topic: str, line: str) -> LogRecord:
    doc = json.loads(line)

    def raw(text: str | None) -> bytes | None:
        return None if text is None else base64.b64decode(text, validate=True)

    return LogRecord(
        topic=topic,
        partition=int(doc["partition"]),
        offset=int(doc["offset"]),
        timestamp_ms=int(doc["timestamp_ms"]),
        key=raw(doc["key"]),
        value=raw(doc["value"]),
        headers=tuple((str(name), raw(value) or b"") for name, value in doc["headers"]),
    )


def within(records: Iterable[LogRecord], until_ms: int) -> list[LogRecord]:
    """Each partition's records up to the first stamped after `until_ms`: a prefix of every
    partition, since a chain proves nothing without its first links."""
    kept: list[LogRecord] = []
    closed: set[int] = set()
    for record in records:
        if record.partition in closed:
            continue
        if record.timestamp_ms > until_ms:
            closed.add(record.partition)
            continue
        kept.append(record)
    return kept


def checkpoints_until(
    documents: Iterable[tuple[str, bytes]], until: datetime
) -> list[tuple[str, bytes]]:
    """The checkpoints issued at or before `until` (an unreadable one is kept: the verifier
    reports it, the export does not judge)."""
    kept = []
    for name, data in documents:
        try:
            issued = datetime.fromisoformat(parse_checkpoint(data).checkpoint.issued_at)
        except ValueError:
            kept.append((name, data))
            continue
        if issued <= until:
            kept.append((name, data))
    return kept


def write(
    folder: Path,
    *,
    topic: str,
    records: Sequence[LogRecord],
    checkpoints: Iterable[tuple[str, bytes]],
    log_keys: Iterable[tuple[str, bytes]],
    approval_keys: Iterable[tuple[str, bytes]],
    schemas: Path,
    until: datetime,
    exported_at: datetime,
) -> dict[str, object]:
    """Write the bundle into `folder` (which must not exist or be empty); its index back."""
    if folder.exists() and any(folder.iterdir()):
        raise BundleError(f"{folder} is not empty: export into a new folder")
    files: dict[str, bytes] = {
        RECORDS: "".join(record_json(r) + "\n" for r in records).encode(),
    }
    for name, data in checkpoints:
        files[name] = data
    for prefix, keys in ((LOG_KEYS, log_keys), (APPROVAL_KEYS, approval_keys)):
        for name, pem in keys:
            files[f"{prefix}/{Path(name).name}"] = pem
    for path in sorted(schemas.rglob("*.avsc")):
        files[f"schemas/{path.relative_to(schemas).as_posix()}"] = path.read_bytes()
    index: dict[str, object] = {
        "format": FORMAT,
        "topic": topic,
        "exported_at": exported_at.isoformat(),
        "until": until.isoformat(),
        "records": len(records),
        "files": {name: _digest(data) for name, data in sorted(files.items())},
    }
    try:
        for name, data in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (folder / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        raise BundleError(f"cannot write the bundle in {folder}: {exc}") from exc
    return index


def read(folder: Path) -> Bundle:
    """Read a bundle; damaged or unlisted files are reported, never silently used or dropped."""
    try:
        index = json.loads((folder / INDEX).read_text())
        if index.get("format") != FORMAT:
            raise BundleError(f"{folder / INDEX}: format is {index.get('format')!r}, not {FORMAT}")
        topic, listed = str(index["topic"]), dict(index["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{folder} is not an audit bundle ({INDEX}: {exc})") from exc
    damaged: list[tuple[str, str]] = []
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    contents: dict[str, bytes] = {}
    for name, path in sorted(present.items()):
        if name == INDEX:
            continue
        data = path.read_bytes()
        if name not in listed:
            damaged.append((name, "not listed in bundle.json: added after the export"))
            continue
        if _digest(data) != listed[name]:
            damaged.append(
                (name, f"its digest is {_digest(data)}, bundle.json says {listed[name]}")
            )
        contents[name] = data
    damaged.extend(
        (name, "listed in bundle.json but missing") for name in sorted(set(listed) - set(present))
    )
    try:
        lines = contents.get(RECORDS, b"").decode().splitlines()
        records = tuple(parse_record(topic, line) for line in lines if line.strip())
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{folder / RECORDS}: not one record per line ({exc})") from exc

    def under(prefix: str, suffix: str) -> tuple[tuple[str, bytes], ...]:
        return tuple(
            (name, data)
            for name, data in sorted(contents.items())
            if name.startswith(prefix + "/")
            and name.endswith(suffix)
            and "/" not in name[len(prefix) + 1 :]
        )

    return Bundle(
        topic=topic,
        records=records,
        checkpoints=under(f"{CHECKPOINT_PREFIX}/{topic}", ".json"),
        log_keys=under(LOG_KEYS, ".pem"),
        approval_keys=under(APPROVAL_KEYS, ".pem"),
        until=str(index.get("until", "")),
        exported_at=str(index.get("exported_at", "")),
        damaged=tuple(damaged),
    )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
