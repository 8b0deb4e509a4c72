"""The archive record: what stays of a revision once its weights are deleted, and its checks.

A record is canonical JSON built only from facts that never change once the revision has
expired (its manifest, its events up to the expiry), never from a clock: building it again
after a crash yields the same bytes, so write-once storage accepts the retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from shared.events import (
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
)
from shared.lifecycle import LifecycleEvent, State
from shared.manifest import FileEntry, Manifest, revision_digest

SCHEMA = "adapters.archive.v1"


def archive_key(adapter: str, revision: str) -> str:
    """Where a revision's record lives inside cold storage: one object per revision."""
    return f"{adapter}/{revision.replace(':', '-')}.json"


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, indent=1, ensure_ascii=True).encode() + b"\n"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_record(
    *, adapter: str, revision: str, manifest: Manifest | None, events: Sequence[LifecycleEvent]
) -> bytes:
    """The record of an expired revision from its events in seq order (later ones ignored)."""
    ours = sorted(
        (e for e in events if (e.envelope.adapter, e.envelope.revision) == (adapter, revision)),
        key=lambda e: e.envelope.seq,
    )
    last_expiry = max(
        (i for i, e in enumerate(ours) if isinstance(e, RevisionExpired)), default=None
    )
    if last_expiry is None:
        raise ValueError(f"{adapter}@{revision} has no RevisionExpired: it cannot be archived")
    trail = ours[: last_expiry + 1]
    expired = trail[-1]
    assert isinstance(expired, RevisionExpired)
    registered = next((e for e in trail if isinstance(e, RevisionRegistered)), None)
    files = sorted(manifest.files, key=lambda f: f.path) if manifest else []
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "adapter": adapter,
        "revision": revision,
        "manifest_digest": manifest.digest if manifest else None,
        "manifest": json.loads(manifest.to_json()) if manifest else None,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
        "total_bytes": sum(f.size for f in files),
        "registered": _registered(registered) if registered else None,
        "evaluations": [
            _evaluation(e)
            for e in trail
            if isinstance(e, RevisionEvaluated | RevisionEvaluationFailed)
        ],
        "decisions": [
            _decision(e) for e in trail if isinstance(e, RevisionApproved | RevisionDenied)
        ],
        "expiry": {**_at(expired), "reason": expired.reason, "policy": dict(expired.policy)},
        "events": [
            {**_at(e), "event": type(e).__name__, "environment": e.envelope.environment}
            for e in trail
        ],
        # Stored bytes found changed (at a use, a scrub, or before this archive): the
        # archive keeps the manifest's hashes, and says the weights no longer matched them.
        "quarantines": [
            {**_at(e), "detected_by": e.detected_by, "findings": [f.message for f in e.findings]}
            for e in ours
            if isinstance(e, RevisionQuarantined)
        ],
        "chain_head": {
            "seq": expired.envelope.seq,
            "hash": expired.envelope.hash,
            "event_id": expired.envelope.event_id,
        },
    }
    return canonical(body)


def _at(event: LifecycleEvent) -> dict[str, Any]:
    envelope = event.envelope
    return {
        "seq": envelope.seq,
        "event_id": envelope.event_id,
        "hash": envelope.hash,
        "occurred_at": envelope.occurred_at.isoformat(),
    }


def _registered(event: RevisionRegistered) -> dict[str, Any]:
    return {
        **_at(event),
        "submitter": event.submitter,
        "manifest_uri": event.manifest_uri,
        "base_model": f"{event.base_model.model_id}@{event.base_model.revision}",
        "quantization_profile": event.quantization_profile,
    }


def _evaluation(event: RevisionEvaluated | RevisionEvaluationFailed) -> dict[str, Any]:
    failed = isinstance(event, RevisionEvaluationFailed)
    return {
        **_at(event),
        "outcome": (State.EVALUATION_FAILED if failed else State.EVALUATED).value,
        "environment": event.envelope.environment,
        "report_digest": event.report_digest,
        "report_uri": event.report_uri,
        "suite_digest": event.suite_digest,
        "baseline_revision": event.baseline_revision,
        "backend": None if isinstance(event, RevisionEvaluationFailed) else event.backend,
        "cause": event.cause if isinstance(event, RevisionEvaluationFailed) else None,
        "metrics": [
            {
                "name": m.name,
                "value": m.value,
                "baseline": m.baseline,
                "threshold": m.threshold,
                "passed": m.passed,
            }
            for m in event.metrics
        ],
    }


def _decision(event: RevisionApproved | RevisionDenied) -> dict[str, Any]:
    approved = isinstance(event, RevisionApproved)
    return {
        **_at(event),
        "decision": "approved" if approved else "denied",
        "environment": event.envelope.environment,
        "actor": {
            "principal": event.envelope.actor.principal,
            "role": event.envelope.actor.role,
        },
        "approvers": list(event.approvers) if isinstance(event, RevisionApproved) else [],
        "manifest_digest": event.manifest_digest,
        "report_digest": event.report_digest,
        "comment": event.comment,
        "signature": event.signature,
        "key_id": event.key_id,
    }


def parse_record(data: bytes) -> dict[str, Any]:
    """The record's body, or ValueError when the bytes are not an archive record."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not an archive record: {exc}") from exc
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        raise ValueError(f"not an {SCHEMA} document")
    return body


def record_files(body: dict[str, Any]) -> tuple[FileEntry, ...]:
    return tuple(FileEntry(**f) for f in body.get("files", []))


def record_manifest(body: dict[str, Any]) -> Manifest | None:
    manifest = body.get("manifest")
    return Manifest.from_json(canonical(manifest)) if manifest is not None else None


def verify_record(data: bytes, *, digest: str, adapter: str, revision: str) -> list[str]:
    """What is wrong with a record read back from cold storage; empty when it holds."""
    if digest_of(data) != digest:
        return [f"record digest is {digest_of(data)}, the registry says {digest}"]
    try:
        body = parse_record(data)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if canonical(body) != data:
        problems.append("record is not in canonical form")
    if (body.get("adapter"), body.get("revision")) != (adapter, revision):
        problems.append(f"record names {body.get('adapter')}@{body.get('revision')}")
    problems += _manifest_problems(body, revision)
    head, expiry, trail = body.get("chain_head", {}), body.get("expiry", {}), body.get("events", [])
    if not trail or trail[-1].get("seq") != head.get("seq") or expiry.get("seq") != head.get("seq"):
        problems.append("chain head is not the revision's last event, its expiry")
    elif trail[-1].get("hash") != head.get("hash"):
        problems.append("chain head hash differs from the last event's hash")
    return problems


def _manifest_problems(body: dict[str, Any], revision: str) -> list[str]:
    try:
        manifest = record_manifest(body)
        files = record_files(body)
    except (TypeError, ValueError) as exc:
        return [f"manifest or file list unreadable: {exc}"]
    if manifest is None:
        return ["record lists files but no manifest"] if files else []
    problems = []
    if manifest.digest != body.get("manifest_digest"):
        problems.append(
            f"manifest digest is {manifest.digest}, record says {body.get('manifest_digest')}"
        )
    if sorted(manifest.files, key=lambda f: f.path) != list(files):
        problems.append("file list differs from the manifest's")
    if manifest.revision != revision or revision_digest(files) != revision:
        problems.append(f"files hash to {revision_digest(files)}, not the revision {revision}")
    return problems
