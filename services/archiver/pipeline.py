"""One revision's way out: expire, archive and verify, record the archive, delete the weights.

Every step starts from the registry's state, so a process killed between any two steps
resumes where it stopped: an `expired` revision is archived again (the record is built
from immutable facts, so the bytes, digest and URI are the same and write-once storage
accepts them), an `archived` one has its archive read back and verified again before any
weight is deleted, and deletion is idempotent. A legal hold placed after the expiry keeps
the weights (the archive is still written) until it is released.
"""

from __future__ import annotations

import asyncio

import structlog

from services.archiver.deps import ArchiverDeps
from services.archiver.ports import WeightStore
from shared.artifacts import ChangedFile
from shared.coldstore.record import (
    archive_key,
    build_record,
    digest_of,
    parse_record,
    record_manifest,
    verify_record,
)
from shared.events import (
    Actor,
    Envelope,
    ManifestArchived,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    WeightsDeleted,
    caused_envelope,
)
from shared.ids import derive_event_id
from shared.lifecycle import InvalidTransition, State
from shared.manifest import Manifest
from shared.quarantine import quarantined
from shared.registry.port import (
    ConcurrentTransition,
    RevisionRecord,
    Step,
    pointers_naming,
)
from shared.retention import ExpiryDecision

log = structlog.get_logger(__name__)

ACTOR = Actor(principal="archiver", role="service")


class ArchiveNotVerified(Exception):
    """The archive read back from cold storage does not prove what it must: nothing is deleted."""


def _after(deps: ArchiverDeps, event_type: str, cause: Envelope) -> Envelope:
    """The envelope of the step `cause` leads to; the expiry's id correlates the whole way out."""
    return Envelope.caused_by(cause, event_type=event_type, actor=ACTOR, occurred_at=deps.clock())


async def expire(deps: ArchiverDeps, decision: ExpiryDecision) -> bool:
    """Commit the expiry on the version the decision read; False when a racing writer won."""
    adapter, revision = decision.adapter, decision.revision
    bound = log.bind(adapter=adapter, revision=revision)
    event_id = derive_event_id(f"{adapter}@{revision}#{decision.version}", "RevisionExpired")
    event = RevisionExpired(
        envelope=Envelope(
            event_id=event_id,
            adapter=adapter,
            revision=revision,
            occurred_at=deps.clock(),
            actor=ACTOR,
            correlation_id=event_id,
        ),
        reason=decision.reason,
        policy=dict(decision.policy),
    )
    try:
        await deps.registry.commit([Step(event, expected_version=decision.version)])
    except ConcurrentTransition as exc:
        bound.info("expiry_lost_race", detail=str(exc))  # the next sweep decides again
        return False
    except InvalidTransition as exc:
        bound.info("expiry_refused", detail=str(exc))
        return False
    bound.info("revision_expired", reason=decision.reason, event_id=event_id)
    deps.crash("expired")
    return True


async def complete(deps: ArchiverDeps, adapter: str, revision: str) -> State | None:
    """Move an expired or archived revision on to `deleted`; the state it ends in."""
    record = await deps.registry.revision(adapter, revision)
    if record is not None and record.status.revision_track is State.EXPIRED:
        await archive(deps, record)
        record = await deps.registry.revision(adapter, revision)
    if record is not None and record.status.revision_track is State.ARCHIVED:
        await delete_weights(deps, record)
        record = await deps.registry.revision(adapter, revision)
    return record.status.revision_track if record else None


async def archive(deps: ArchiverDeps, record: RevisionRecord) -> None:
    adapter, revision = record.adapter, record.revision
    bound = log.bind(adapter=adapter, revision=revision)
    events = await deps.registry.events(adapter, revision)
    registered = next((e for e in events if isinstance(e, RevisionRegistered)), None)
    manifest = None
    if registered is not None and registered.manifest_digest:
        manifest = await asyncio.to_thread(deps.store.get_manifest, registered.manifest_digest)
    if manifest is not None and not any(isinstance(e, RevisionQuarantined) for e in events):
        # The archive keeps the manifest's hashes; stored bytes that no longer match them
        # are recorded on the log first (the revision is quarantined), never archived as
        # if they did, and the way out goes on: a known-bad copy is no reason to keep it.
        changed = await asyncio.to_thread(deps.store.verify_stored, manifest)
        if changed:
            await record_quarantine(deps, record, manifest, changed, detected_by="archiver")
            return await archive(deps, await _reread(deps, record))
    expired = [e for e in events if isinstance(e, RevisionExpired)]
    data = build_record(adapter=adapter, revision=revision, manifest=manifest, events=events)
    digest = digest_of(data)
    uri = await asyncio.to_thread(deps.cold.put, archive_key(adapter, revision), data)
    bound.info("archive_written", archive_uri=uri, archive_digest=digest)
    deps.crash("archived")

    back = await asyncio.to_thread(deps.cold.read, uri)
    problems = verify_record(back, digest=digest, adapter=adapter, revision=revision)
    if problems:
        bound.error("archive_not_verified", archive_uri=uri, problems=problems)
        raise ArchiveNotVerified(f"{adapter}@{revision} at {uri}: " + "; ".join(problems))
    bound.info("archive_verified", archive_uri=uri)
    deps.crash("verified")

    event = ManifestArchived(
        envelope=_after(deps, "ManifestArchived", expired[-1].envelope),
        archive_uri=uri,
        archive_digest=digest,
    )
    await deps.registry.commit([Step(event, expected_version=record.version)])
    bound.info("manifest_archived", archive_uri=uri, archive_digest=digest)
    deps.crash("recorded")


async def _reread(deps: ArchiverDeps, record: RevisionRecord) -> RevisionRecord:
    fresh = await deps.registry.revision(record.adapter, record.revision)
    if fresh is None:
        raise ConcurrentTransition(f"{record.adapter}@{record.revision} left the registry")
    return fresh


async def record_quarantine(
    deps: ArchiverDeps,
    record: RevisionRecord,
    manifest: Manifest,
    changed: list[ChangedFile],
    *,
    detected_by: str,
) -> None:
    """Commit the revision's quarantine, one finding per changed file (once per revision:
    the event id derives from the manifest and what was found)."""
    found = ",".join(f"{c.path}={c.found[0]}" for c in changed)
    envelope = caused_envelope(
        cause_id=derive_event_id(f"{manifest.digest}/{found}", "integrity"),
        correlation_id=derive_event_id(manifest.digest, "integrity"),
        adapter=record.adapter,
        revision=record.revision,
        event_type="RevisionQuarantined",
        actor=ACTOR,
        occurred_at=deps.clock(),
    )
    event = quarantined(envelope, detected_by, manifest.digest, changed)
    await deps.registry.commit([Step(event, expected_version=record.version)])
    if deps.metrics is not None:
        deps.metrics.integrity_violations.labels(deps.metrics.service, detected_by).inc()
    log.error(
        "revision_quarantined",
        adapter=record.adapter,
        revision=record.revision,
        detected_by=detected_by,
        findings=[f.message for f in event.findings],
    )


async def delete_weights(deps: ArchiverDeps, record: RevisionRecord) -> None:
    adapter, revision = record.adapter, record.revision
    bound = log.bind(adapter=adapter, revision=revision)
    held = await deps.rules.hold_reason(adapter, revision)
    if held is not None:  # placed after the expiry: the weights stay while it is in force
        bound.info("deletion_held", reason=held)
        return
    found = await deps.registry.events(adapter, revision, types=(ManifestArchived,))
    archived = found[-1] if found else None
    if not isinstance(archived, ManifestArchived):
        raise ArchiveNotVerified(f"{adapter}@{revision} is archived but has no ManifestArchived")
    data = await asyncio.to_thread(deps.cold.read, archived.archive_uri)
    problems = verify_record(
        data, digest=archived.archive_digest, adapter=adapter, revision=revision
    )
    if problems:
        bound.error("archive_not_verified", archive_uri=archived.archive_uri, problems=problems)
        raise ArchiveNotVerified(f"{adapter}@{revision}: " + "; ".join(problems))
    named = pointers_naming(await deps.registry.pointers(adapter), adapter, revision)
    if named:  # the lifecycle clears pointers on expiry: this would be a registry defect
        raise ArchiveNotVerified(f"{adapter}@{revision} is still named by {', '.join(named)}")
    manifest = record_manifest(parse_record(data))
    files, freed = (
        await asyncio.to_thread(remove_weights, deps.store, manifest) if manifest else (0, 0)
    )
    bound.info("weights_removed", file_count=files, bytes_freed=freed)
    deps.crash("deleted")

    event = WeightsDeleted(
        envelope=_after(deps, "WeightsDeleted", archived.envelope),
        file_count=files,
        bytes_freed=freed,
    )
    await deps.registry.commit([Step(event, expected_version=record.version)])
    bound.info("weights_deleted", file_count=files, bytes_freed=freed)


def remove_weights(store: WeightStore, manifest: Manifest) -> tuple[int, int]:
    """Delete the revision's folder and unshared blobs; (blobs gone, their bytes).

    Counted from what is gone afterwards, not from what this call removed, so a deletion
    resumed after a crash reports the same totals as one that ran through.
    """
    store.delete_revision(manifest)
    distinct = {f.sha256: f for f in manifest.files}.values()
    gone = [f for f in distinct if not store.blob_path(f.sha256).exists()]
    return len(gone), sum(f.size for f in gone)
