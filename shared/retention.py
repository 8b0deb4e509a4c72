"""Retention: which revisions stay addressable, which expire, and which may serve again.

Pure functions of values; the archiver (and the activator, for rollbacks) read the facts
from the registry and pass `now` in. The rules, in the order they keep a revision:

- only a revision whose revision track is `validated` or `rejected` can expire (the
  lifecycle allows nothing else), so expired, archived and deleted ones are never decided
  again and one still `registered` waits for its verdict;
- a revision with a canary or active track, or named by any environment's pointer
  (active, canary, rollback target), is kept;
- a revision under a legal hold is kept;
- a revision still in flight is kept: validated but not yet evaluated, or evaluated or
  approved in some environment (awaiting an approver or a rollout);
- every environment the revision has a track in must let it go, by its policy: the
  adapter's own policy there, else the environment's default. An environment without a
  policy lets nothing go. A revision with no environment track (rejected, never evaluated)
  answers to every environment that has a policy for its adapter, and is kept when none has;
- a revision younger than the largest `min_age_days` among those policies is kept;
- in each environment the newest `keep_superseded` superseded revisions that are still
  addressable are kept, newest by when they were superseded (the rollback target, which is
  the one superseded last, counts among them);
- everything else expires.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.lifecycle import SERVING, RevisionStatus, State
from shared.pointers import EnvironmentPointer

if TYPE_CHECKING:
    from shared.registry.port import Registry

EXPIRABLE = frozenset({State.VALIDATED, State.REJECTED})
# Still moving through the train: awaiting an approver or a rollout. Expiring such a
# revision would race the pipeline that is deciding on it.
IN_FLIGHT = frozenset({State.EVALUATED, State.APPROVED})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    environment: str
    adapter: str = ""  # "" is the environment's default for every adapter
    keep_superseded: int
    min_age_days: int

    def __post_init__(self) -> None:
        if self.keep_superseded < 0 or self.min_age_days < 0:
            raise ValueError("keep_superseded and min_age_days must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class RevisionFacts:
    """What the decision needs to know about one revision, read from the registry."""

    adapter: str
    revision: str
    version: int  # the version read: the expiry is a compare-and-set on it
    status: RevisionStatus
    registered_at: datetime
    superseded_seq: Mapping[str, int] = field(default_factory=dict)  # env -> seq of its last
    # RevisionSuperseded there: a later supersession is a newer superseded revision


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryDecision:
    adapter: str
    revision: str
    version: int
    reason: str
    policy: Mapping[str, str] = field(default_factory=dict)


def policy_for(
    policies: Iterable[RetentionPolicy], environment: str, adapter: str
) -> RetentionPolicy | None:
    """The adapter's own policy in `environment`, else the environment's default, else None."""
    default = None
    for policy in policies:
        if policy.environment != environment:
            continue
        if policy.adapter == adapter:
            return policy
        if policy.adapter == "":
            default = policy
    return default


def pointer_names(pointer: EnvironmentPointer, revision: str) -> bool:
    return revision in (pointer.active, pointer.canary, pointer.rollback_target)


def decide_expiry(
    revisions: Iterable[RevisionFacts],
    pointers: Mapping[tuple[str, str], EnvironmentPointer],
    policies: Collection[RetentionPolicy],
    holds: Collection[tuple[str, str]],
    now: datetime,
) -> list[ExpiryDecision]:
    """Every revision that expires now, in the order given; `pointers` by (adapter, env)."""
    facts = list(revisions)
    ranks = _superseded_ranks(facts)
    decisions = []
    for fact in facts:
        if _protected(fact, pointers, holds):
            continue
        governing = _governing(fact, policies)
        if governing is None:
            continue
        min_age = max(p.min_age_days for p in governing.values())
        if now - fact.registered_at < timedelta(days=min_age):
            continue
        key = (fact.adapter, fact.revision)
        if any(
            ranks.get((*key, environment), policy.keep_superseded) < policy.keep_superseded
            for environment, policy in governing.items()
        ):
            continue  # among the newest superseded that an environment keeps
        decisions.append(
            ExpiryDecision(
                adapter=fact.adapter,
                revision=fact.revision,
                version=fact.version,
                reason=_reason(fact, governing, min_age),
                policy=_describe(governing),
            )
        )
    return decisions


def _protected(
    fact: RevisionFacts,
    pointers: Mapping[tuple[str, str], EnvironmentPointer],
    holds: Collection[tuple[str, str]],
) -> bool:
    """Kept whatever the policy: cannot expire, serves, is pointed at, or is held."""
    if fact.status.revision_track not in EXPIRABLE:
        return True
    tracks = fact.status.environment_tracks.values()
    if any(s in SERVING or s in IN_FLIGHT for s in tracks):
        return True
    if fact.status.revision_track is State.VALIDATED and not tracks:
        return True  # validated, its evaluation not yet done: in flight too
    named = (pointer_names(p, fact.revision) for (a, _), p in pointers.items() if a == fact.adapter)
    return any(named) or (fact.adapter, fact.revision) in holds


def _governing(
    fact: RevisionFacts, policies: Collection[RetentionPolicy]
) -> dict[str, RetentionPolicy] | None:
    """The policy of each environment the revision answers to; None when one lacks a policy."""
    environments = sorted(fact.status.environment_tracks) or sorted(
        {p.environment for p in policies if p.adapter in ("", fact.adapter)}
    )
    governing = {}
    for environment in environments:
        policy = policy_for(policies, environment, fact.adapter)
        if policy is None:
            return None
        governing[environment] = policy
    return governing or None


def _superseded_ranks(facts: list[RevisionFacts]) -> dict[tuple[str, str, str], int]:
    """(adapter, revision, env) -> 0 for the newest addressable superseded revision there, ..."""
    groups: dict[tuple[str, str], list[RevisionFacts]] = {}
    for fact in facts:
        if fact.status.revision_track is not State.VALIDATED:
            continue  # expired ones no longer count among the revisions kept
        for environment, state in fact.status.environment_tracks.items():
            if state is State.SUPERSEDED:
                groups.setdefault((fact.adapter, environment), []).append(fact)
    ranks = {}
    for (adapter, environment), group in groups.items():
        group.sort(
            key=lambda f: (f.superseded_seq.get(environment, 0), f.registered_at, f.revision),
            reverse=True,
        )
        for rank, fact in enumerate(group):
            ranks[(adapter, fact.revision, environment)] = rank
    return ranks


def _reason(fact: RevisionFacts, governing: Mapping[str, RetentionPolicy], min_age: int) -> str:
    parts = ["rejected"] if fact.status.revision_track is State.REJECTED else []
    for environment, policy in governing.items():
        state = fact.status.environment_tracks.get(environment)
        if state is State.SUPERSEDED:
            parts.append(
                f"superseded in {environment} beyond the newest {policy.keep_superseded} kept"
            )
        elif state is not None:
            parts.append(f"{state.value} in {environment}")
    parts.append(f"older than {min_age} days, not serving, not named by a pointer, not held")
    return "; ".join(parts)


def _describe(governing: Mapping[str, RetentionPolicy]) -> dict[str, str]:
    described = {}
    for environment, policy in governing.items():
        scope = f"adapter {policy.adapter}" if policy.adapter else "environment default"
        described[f"{environment}.scope"] = scope
        described[f"{environment}.keep_superseded"] = str(policy.keep_superseded)
        described[f"{environment}.min_age_days"] = str(policy.min_age_days)
    return described


class RollbackRefused(Exception):
    """The revision cannot serve again; the message says why and where its evidence is."""


def rollback_refusal(
    adapter: str, revision: str, environment: str, status: RevisionStatus | None
) -> str | None:
    """Why `revision` may not become active again in `environment`, or None when it may."""
    head = f"cannot roll {adapter} in {environment} back to {revision}"
    show = f"`adapterctl archive show {revision} --adapter {adapter}`"
    if status is None:
        return f"{head}: no such revision is registered"
    track = status.revision_track
    if track is State.DELETED:
        return (
            f"{head}: the revision is archived and its weights were deleted; only its manifest "
            f"and hashes remain, in cold storage ({show})"
        )
    if track is State.ARCHIVED:
        return (
            f"{head}: the revision is archived (manifest and hashes in cold storage, {show}) "
            "and its weights are being deleted"
        )
    if track is State.EXPIRED:
        return (
            f"{head}: the revision expired under the retention policy and is being archived; "
            "its weights will be deleted"
        )
    if track is not State.VALIDATED:
        return f"{head}: the revision is {track.value if track else 'unknown'}, not validated"
    state = status.track(environment)
    if state is State.SUPERSEDED:
        return None
    if state is State.ROLLED_BACK:
        return f"{head}: it was rolled back in {environment} and may not serve there again"
    if state in SERVING:
        return f"{head}: it is already {state.value if state else ''} in {environment}"
    return f"{head}: it never served in {environment} (its track there is {state})"


async def check_rollback_target(
    registry: Registry, adapter: str, revision: str, environment: str
) -> None:
    """RollbackRefused unless `revision` is still addressable and may serve again.

    The activator calls this before it commits a rollback; the registry's compare-and-set
    on the target's version still decides a race with an expiry that commits meanwhile.
    """
    record = await registry.revision(adapter, revision)
    refusal = rollback_refusal(adapter, revision, environment, record.status if record else None)
    if refusal is not None:
        raise RollbackRefused(refusal)
