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
from shared.artifacts import hash_file
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
    RevisionRegistered,
    WeightsDeleted,
)
from shared.ids import derive_event_id
from shared.lifecycle import InvalidTransition, State
from shared.manifest import Manifest
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
    expired = [e for e in events if isinstance(e, RevisionExpired)]
    manifest = None
    if registered is not None and registered.manifest_digest:
        manifest = await asyncio.to_thread(deps.store.get_manifest, registered.manifest_digest)
    data = build_record(adapter=adapter, revision=revision, manifest=manifest, events=events)
    digest = digest_of(data)
    uri = await asyncio.to_thread(deps.cold.put, archive_key(adapter, revision), data)
    bound.info("archive_written", archive_uri=uri, archive_digest=digest)
    deps.crash("archived")

    back = await asyncio.to_thread(deps.cold.read, uri)
    problems = verify_record(back, digest=digest, adapter=adapter, revision=revision)
    if manifest is not None:
        problems += await asyncio.to_thread(weight_problems, deps.store, manifest)
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


def weight_problems(store: WeightStore, manifest: Manifest) -> list[str]:
    """Do the stored weights still hash to what the archive keeps? Checked before recording."""
    problems = []
    for entry in {f.sha256: f for f in manifest.files}.values():
        blob = store.blob_path(entry.sha256)
        if not blob.exists():
            problems.append(f"{entry.path}: blob {entry.sha256} is missing from the store")
        elif hash_file(blob) != (entry.sha256, entry.size):
            problems.append(f"{entry.path}: stored bytes no longer hash to {entry.sha256}")
    return problems


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
