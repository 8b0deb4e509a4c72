"""A realistic lifecycle history for the audit benchmark: many adapters, each with a run of
revisions through validation, evaluation, approval, canary, activation, rollback and expiry,
planned with the lifecycle's own rules and committed through the registry and its relay."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.coldstore.ports import ColdStorage
from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    ManifestArchived,
    RevisionActivated,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
    RolloutFailed,
    RolloutStalled,
    WeightsDeleted,
)
from shared.kafka.auth import Kafka, endpoint
from shared.lifecycle import SERVING, LifecycleEvent, RevisionStatus, State, apply
from shared.pointers import EnvironmentPointer, move_pointer
from shared.registry.relay import OutboxRelay, RelayConfig
from shared.registry.store import PostgresRegistry, Step
from shared.signing import Signer
from tests.factories import lifecycle

ENVIRONMENTS = ("staging", "production")
KEEP_RECENT = 3  # the newest revisions of an adapter never expire


@dataclass
class AdapterStory:
    """One adapter's commits; each event is applied to a model of the registry's state as it
    is planned, so every commit is legal when the registry replays the same rules."""

    adapter: str
    rng: random.Random
    statuses: dict[str, RevisionStatus] = field(default_factory=dict)
    pointers: dict[str, EnvironmentPointer] = field(default_factory=dict)
    revisions: list[str] = field(default_factory=list)
    commits: list[list[LifecycleEvent]] = field(default_factory=list)
    events: int = 0

    def commit(self, *events: Any) -> None:
        for event in events:
            envelope = event.envelope
            status = self.statuses.get(envelope.revision, RevisionStatus())
            self.statuses[envelope.revision] = apply(status, event)
            moved = [envelope.environment] if envelope.environment else list(self.pointers)
            for environment in moved:
                before = self.pointers.get(environment, EnvironmentPointer())
                self.pointers[environment] = move_pointer(before, event)
        self.commits.append(list(events))
        self.events += len(events)

    def event(self, cls: type, revision: str, environment: str = "", **fields: Any) -> Any:
        return lifecycle(cls, self.adapter, revision, environment, **fields)

    def revision(self) -> None:
        """Register the next revision and take it as far as chance lets it go."""
        n = len(self.revisions)
        revision = "sha256:" + hashlib.sha256(f"{self.adapter}/{n}".encode()).hexdigest()
        self.revisions.append(revision)
        registered = self.event(RevisionRegistered, revision, target_environments=[*ENVIRONMENTS])
        if self.rng.random() < 0.08:
            self.commit(registered, self.event(RevisionRejected, revision))
        else:
            validated = self.event(
                RevisionValidated, revision, checked_environments=[*ENVIRONMENTS]
            )
            self.commit(registered, validated)
            for environment in ENVIRONMENTS:
                if not self.release(revision, environment):
                    break
        self.expire_old()

    def release(self, revision: str, environment: str) -> bool:
        """Evaluate, approve and roll out in one environment; True when it ends active."""
        if self.rng.random() < 0.1:
            self.commit(self.event(RevisionEvaluationFailed, revision, environment))
            return False
        self.commit(self.event(RevisionEvaluated, revision, environment))
        if self.rng.random() < 0.08:
            self.commit(self.event(RevisionDenied, revision, environment))
            return False
        self.commit(self.event(RevisionApproved, revision, environment))
        if len(self.revisions) % 4 == 3:  # a replica stayed down, then refused the load
            self.commit(self.event(RolloutStalled, revision, environment))
            self.commit(self.event(RolloutFailed, revision, environment))
        active = self.pointers.get(environment, EnvironmentPointer()).active
        if active is None:
            self.commit(
                self.event(RevisionActivated, revision, environment, previous_revision=None)
            )
            return True
        self.commit(self.event(CanaryStarted, revision, environment, stable_revision=active))
        for share in (25, 50)[: self.rng.randint(1, 2)]:
            self.commit(self.event(CanaryExpanded, revision, environment, traffic_percent=share))
        if self.rng.random() < 0.1:
            self.commit(
                self.event(RevisionRolledBack, revision, environment, restored_revision=None)
            )
            return False
        self.commit(
            self.event(RevisionSuperseded, active, environment, superseded_by=revision),
            self.event(RevisionActivated, revision, environment, previous_revision=active),
        )
        target = self.pointers[environment].rollback_target
        if target is not None and self.rng.random() < 0.06:  # an operator's rollback
            self.commit(
                self.event(RevisionRolledBack, revision, environment, restored_revision=target),
                self.event(RevisionActivated, target, environment, previous_revision=None),
            )
            return False
        return True

    def expire_old(self) -> None:
        """Retention: old revisions that serve nowhere and no pointer names are archived."""
        named = {r for p in self.pointers.values() for r in (p.active, p.canary, p.rollback_target)}
        for revision in self.revisions[:-KEEP_RECENT]:
            status = self.statuses[revision]
            at_rest = not any(s in SERVING for s in status.environment_tracks.values())
            expirable = status.revision_track in (State.VALIDATED, State.REJECTED)
            if expirable and at_rest and revision not in named:
                if self.rng.random() < 0.03:  # a scrub found its bytes changed at rest
                    self.commit(self.event(RevisionQuarantined, revision))
                self.commit(
                    self.event(RevisionExpired, revision),
                    self.event(ManifestArchived, revision),
                    self.event(WeightsDeleted, revision),
                )


def plan(events: int, adapters: int, seed: int = 10) -> list[AdapterStory]:
    """About `events` events over `adapters` adapters (each stops at the first commit that
    reaches its share), the same for the same seed."""
    share = events / adapters
    stories = []
    for i in range(adapters):
        story = AdapterStory(f"audit-{i:04d}", random.Random(seed * 100_003 + i))
        while story.events < share:
            story.revision()
        while story.events - len(story.commits[-1]) >= share:  # a prefix stays legal
            story.events -= len(story.commits.pop())
        stories.append(story)
    return stories


async def commit_and_publish(
    stories: Sequence[AdapterStory],
    dsn: str,
    bootstrap: Kafka,
    topic: str,
    writers: int = 8,
    *,
    signer: Signer | None = None,
    cold: ColdStorage | None = None,
) -> dict[str, Any]:
    """Commit every story through the registry (adapters in parallel, each in order) while
    the outbox relay publishes to `topic` (signing and checkpointing when given a key and
    cold storage, as in production); return once every event is on the topic."""
    from shared.codec import Codec

    registry = await PostgresRegistry.connect(dsn, Codec.from_env(), max_size=writers + 1)
    config = RelayConfig(
        dsn=dsn,
        kafka=endpoint(bootstrap),
        topic=topic,
        signer=signer,
        cold=cold,
        checkpoint_interval_s=5.0,
    )
    relay = OutboxRelay(config)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    queue: asyncio.Queue[AdapterStory] = asyncio.Queue()
    for story in stories:
        queue.put_nowait(story)

    async def writer() -> None:
        while not queue.empty():
            story = queue.get_nowait()
            for events in story.commits:
                await registry.commit([Step(e) for e in events])

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(writer() for _ in range(writers)))
    committed_s = loop.time() - started
    total = sum(s.events for s in stories)
    while relay.published < total:
        await asyncio.sleep(0.1)
    if signer is not None and cold is not None:  # the whole history anchored
        async with registry.pool.acquire() as conn:
            await relay.checkpoint(conn)
    stop.set()
    await relay_task
    await registry.close()
    return {
        "events": total,
        "commits": sum(len(s.commits) for s in stories),
        "commit_s": round(committed_s, 2),
        "commit_and_publish_s": round(loop.time() - started, 2),
    }
