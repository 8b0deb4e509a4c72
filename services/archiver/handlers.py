"""The archiver's sweep (run by a faust timer) and its reactions to lifecycle events."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from services.archiver.deps import ArchiverDeps
from services.archiver.facts import pending, read_facts
from services.archiver.pipeline import ArchiveNotVerified, complete, expire
from shared.artifacts import StoreError
from shared.coldstore import ColdStorageError
from shared.events import (
    ManifestArchived,
    RevisionExpired,
    RevisionQuarantined,
    RevisionSuperseded,
    WeightsDeleted,
)
from shared.flow import ServiceFlow, Topic
from shared.kafka.dispatch import Handler
from shared.lifecycle import State
from shared.registry.port import ConcurrentTransition, pointers_naming
from shared.retention import decide_expiry

log = structlog.get_logger(__name__)

# What keeps one revision where it stands until the next sweep, the others going on: its
# archive does not verify, cold storage refuses or cannot read it, its weights are not
# where the store says, or another writer moved it first. Anything else is a bug in this
# service: it propagates (and a registry outage propagates, for the caller to wait out).
REVISION_FAULTS: tuple[type[Exception], ...] = (
    ArchiveNotVerified,
    ColdStorageError,
    StoreError,
    ConcurrentTransition,
)


@dataclass
class SweepReport:
    expired: list[tuple[str, str]] = field(default_factory=list)
    finished: dict[tuple[str, str], State | None] = field(default_factory=dict)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)


async def sweep(deps: ArchiverDeps, adapter: str | None = None) -> SweepReport:
    """Expire what the policy lets go, then take every expired revision to `deleted`.

    A revision that fails for one of `REVISION_FAULTS` (cold storage down, an archive that
    does not verify) is logged and left where it stands; the next sweep tries it again,
    and nothing is deleted without a verified archive. Any other exception propagates.
    """
    report = SweepReport()
    async with deps.lock:
        facts = await read_facts(deps.registry, deps.rules, adapter)
        decisions = decide_expiry(
            facts.revisions, facts.pointers, facts.policies, facts.holds, deps.clock()
        )
        for decision in decisions:
            if await expire(deps, decision):
                report.expired.append((decision.adapter, decision.revision))
        for key in await pending(deps.registry, adapter):
            try:
                report.finished[key] = await complete(deps, *key)
            except REVISION_FAULTS as exc:  # reported, logged and retried by the next sweep
                report.failed[key] = f"{type(exc).__name__}: {exc}"
                log.error(
                    "revision_archiving_failed", adapter=key[0], revision=key[1], error=repr(exc)
                )
    if report.expired or report.finished or report.failed:
        log.info(
            "sweep_done",
            adapter=adapter,
            expired=len(report.expired),
            finished=len(report.finished),
            failed=len(report.failed),
        )
    return report


async def on_revision_expired(event: RevisionExpired, deps: ArchiverDeps) -> None:
    """Archive at once rather than at the next tick (errors go to the dispatcher's retries)."""
    async with deps.lock:
        await complete(deps, event.envelope.adapter, event.envelope.revision)


async def on_revision_superseded(event: RevisionSuperseded, deps: ArchiverDeps) -> None:
    """A supersession may push an older revision past the policy: sweep that adapter."""
    await sweep(deps, event.envelope.adapter)


async def on_revision_quarantined(event: RevisionQuarantined, deps: ArchiverDeps) -> None:
    """Every quarantine on the log, whoever caught it, raises the one alert metric; one that
    still serves somewhere says what the operator must do (runbook §9)."""
    env = event.envelope
    if deps.metrics is not None and event.detected_by not in ("archiver", "scrubber"):
        deps.metrics.integrity_violations.labels(deps.metrics.service, event.detected_by).inc()
    # The quarantine cleared it as a rollback target: what still names it serves it.
    serving = pointers_naming(await deps.registry.pointers(env.adapter), env.adapter, env.revision)
    if serving:
        log.error(
            "quarantined_revision_serving",
            adapter=env.adapter,
            revision=env.revision,
            serving=serving,
            action=f"adapterctl rollback {env.adapter} --env <environment> (runbook §9)",
        )


def handlers(deps: ArchiverDeps) -> dict[type, Handler]:
    async def expired(event: RevisionExpired) -> None:
        await on_revision_expired(event, deps)

    async def superseded(event: RevisionSuperseded) -> None:
        await on_revision_superseded(event, deps)

    async def quarantined(event: RevisionQuarantined) -> None:
        await on_revision_quarantined(event, deps)

    return {
        RevisionExpired: expired,
        RevisionSuperseded: superseded,
        RevisionQuarantined: quarantined,
    }


FLOW = ServiceFlow(
    service="archiver",
    consumes=(Topic.LIFECYCLE,),
    handles=(RevisionExpired, RevisionSuperseded, RevisionQuarantined),
    emits=(RevisionExpired, ManifestArchived, WeightsDeleted, RevisionQuarantined),
    inputs=(
        "a sweep on a timer",
        "a scrub of the store on a timer",
        "cold storage",
        "HTTP: retention and holds, by an admin",
    ),
)
