"""The scrubber: the artifact store re-hashed on a schedule, a bounded share per tick.

Each tick re-hashes the stored blobs (and served copies) of the next revisions in a stable
order, until the tick's byte budget is spent; a pass ends when every revision still
holding weights was read, and the next one starts over. A revision whose bytes no longer
hash to its manifest is quarantined on the lifecycle log (`RevisionQuarantined`, detected
by "scrubber"): it can never be loaded, approved or rolled back to again, and
`adapters_integrity_violations_total` goes up for the alert. Progress is a metric
(`adapters_scrub_pass_progress`, `adapters_scrub_bytes_total`, `adapters_scrub_passes_total`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from services.archiver.deps import ArchiverDeps
from services.archiver.pipeline import record_quarantine
from shared.artifacts import StoreError
from shared.events import RevisionQuarantined
from shared.lifecycle import State
from shared.registry.port import ConcurrentTransition, RevisionRecord

log = structlog.get_logger(__name__)

# The revision tracks whose weights are still on disk (DELETED holds none to check).
HOLDING_WEIGHTS = (
    State.REGISTERED,
    State.VALIDATED,
    State.REJECTED,
    State.EXPIRED,
    State.ARCHIVED,
)


@dataclass
class ScrubCursor:
    """Where the pass stands: the last revision read, and how far through the pass it is."""

    after: tuple[str, str] | None = None
    done: int = 0
    passes: int = 0


@dataclass
class ScrubTick:
    scanned: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0
    pass_completed: bool = False


def next_batch(
    records: list[RevisionRecord], after: tuple[str, str] | None
) -> list[RevisionRecord]:
    """The revisions after `after` in (adapter, revision) order: the rest of this pass."""
    ordered = sorted(records, key=lambda r: (r.adapter, r.revision))
    return [r for r in ordered if after is None or (r.adapter, r.revision) > after]


async def scrub_tick(deps: ArchiverDeps, cursor: ScrubCursor, budget_bytes: int) -> ScrubTick:
    """Re-hash revisions from the cursor on until `budget_bytes` are read (at least one)."""
    tick = ScrubTick()
    records = [
        r for r in await deps.registry.revisions(tracks=HOLDING_WEIGHTS) if r.manifest_digest
    ]
    rest = next_batch(records, cursor.after)
    for record in rest:
        if tick.bytes_read >= budget_bytes and tick.scanned:
            break
        key = (record.adapter, record.revision)
        tick.scanned.append(key)
        cursor.after, cursor.done = key, cursor.done + 1
        try:
            tick.bytes_read += await _scrub_one(deps, record, tick)
        except (StoreError, OSError, ValueError) as exc:  # an unreadable manifest, a bad path
            log.error("scrub_failed", adapter=key[0], revision=key[1], error=repr(exc))
    if cursor.after is None or not next_batch(records, cursor.after):
        tick.pass_completed = bool(records)
        cursor.after, cursor.done = None, 0
        cursor.passes += 1 if records else 0
    if deps.metrics is not None:
        service = deps.metrics.service
        deps.metrics.scrub_bytes.labels(service).inc(tick.bytes_read)
        total = len(records) or 1
        deps.metrics.scrub_progress.labels(service).set(min(1.0, cursor.done / total))
        if tick.pass_completed:
            deps.metrics.scrub_passes.labels(service).inc()
    return tick


async def _scrub_one(deps: ArchiverDeps, record: RevisionRecord, tick: ScrubTick) -> int:
    manifest = await asyncio.to_thread(deps.store.get_manifest, str(record.manifest_digest))
    size = deps.store.stored_bytes(manifest)
    changed = await asyncio.to_thread(deps.store.verify_stored, manifest)
    if not changed:
        return size
    known = await deps.registry.events(
        record.adapter, record.revision, types=(RevisionQuarantined,)
    )
    if known:
        return size  # recorded once; it stays quarantined until it is deleted
    try:
        await record_quarantine(deps, record, manifest, changed, detected_by="scrubber")
    except ConcurrentTransition:
        log.info("scrub_lost_race", adapter=record.adapter, revision=record.revision)
        return size  # moved meanwhile: the next pass reads it again
    tick.quarantined.append((record.adapter, record.revision))
    return size
