"""What a sweep reads: revisions, pointers and supersessions from the registry (one snapshot),
and the retention policies and legal holds from the archiver's own store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.archiver.ports import RetentionRules
from shared.events import RevisionSuperseded
from shared.lifecycle import LifecycleEvent, State
from shared.pointers import EnvironmentPointer
from shared.registry.port import Registry
from shared.retention import RetentionPolicy, RevisionFacts

# A revision may expire from these revision-track states; these are on the way out.
EXPIRABLE = (State.VALIDATED, State.REJECTED)
LEAVING = (State.EXPIRED, State.ARCHIVED)


@dataclass(frozen=True, slots=True)
class Facts:
    revisions: list[RevisionFacts]
    pointers: dict[tuple[str, str], EnvironmentPointer]
    policies: list[RetentionPolicy]
    holds: set[tuple[str, str]]


async def read_facts(
    registry: Registry, rules: RetentionRules, adapter: str | None = None
) -> Facts:
    """Every revision that may expire (of `adapter`, or all), and what decides it.

    The registry's part is one consistent snapshot, so versions and pointers agree.
    """
    snapshot = await registry.snapshot(
        tracks=EXPIRABLE, adapter=adapter, event_types=(RevisionSuperseded,)
    )
    superseded = superseded_seqs(snapshot.events)
    return Facts(
        revisions=[
            RevisionFacts(
                adapter=r.adapter,
                revision=r.revision,
                version=r.version,
                status=r.status,
                registered_at=r.created_at,
                superseded_seq=superseded.get((r.adapter, r.revision), {}),
            )
            for r in sorted(snapshot.revisions, key=lambda r: (r.adapter, r.created_at, r.revision))
            if r.created_at is not None
        ],
        pointers=snapshot.pointers,
        policies=await rules.policies(),
        holds=await rules.holds(adapter),
    )


def superseded_seqs(events: Sequence[LifecycleEvent]) -> dict[tuple[str, str], dict[str, int]]:
    """(adapter, revision) -> {environment: seq of its last RevisionSuperseded there}."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    for event in events:
        if isinstance(event, RevisionSuperseded):
            envelope = event.envelope
            key = (envelope.adapter, envelope.revision)
            found.setdefault(key, {})[envelope.environment] = envelope.seq
    return found


async def pending(registry: Registry, adapter: str | None = None) -> list[tuple[str, str]]:
    """Revisions expired or archived whose weights are not yet deleted, oldest move first."""
    return [
        (r.adapter, r.revision) for r in await registry.revisions(tracks=LEAVING, adapter=adapter)
    ]
