"""Rollout decisions: which lifecycle events a command or a verdict commits, or why none.

Pure functions of the environment's pointer and the revisions' statuses. The registry
still decides legality and races (compare-and-set); these decide intent and explain refusals.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from services.activator.analysis import Verdict
from shared.events import (
    Actor,
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionRolledBack,
    RevisionSuperseded,
)
from shared.identity import canonical
from shared.lifecycle import RevisionStatus, State
from shared.pointers import EnvironmentPointer

OPERATING_ROLES = frozenset({"operator", "admin"})


class PlanAction(StrEnum):
    """What a plan does to the environment."""

    ACTIVATE = "activate"
    CANARY = "canary"
    EXPAND = "expand"
    ROLLBACK = "rollback"


class RequestAction(StrEnum):
    """What a request asked of the activator, as its outcome row records it."""

    APPROVED = "approved"  # an approval, which the environment's policy may roll out
    PROMOTE = "promote"
    EXPAND = "expand"
    ROLLBACK = "rollback"
    ABORT = "abort"
    ANALYSIS_HOLD = "analysis.hold"
    ANALYSIS_EXPAND = "analysis.expand"
    ANALYSIS_PROMOTE = "analysis.promote"
    ANALYSIS_ROLL_BACK = "analysis.roll_back"
    SET_REPLICAS = "env.replicas"  # an operator's SetReplicas command
    SET_ANALYSIS = "env.analysis"  # an operator's SetCanaryAnalysis command

    @classmethod
    def of_analysis(cls, verdict: Verdict) -> RequestAction:
        """The request a canary analysis makes with its verdict."""
        return ANALYSIS_ACTIONS[verdict]


ANALYSIS_ACTIONS = MappingProxyType(
    {
        Verdict.hold: RequestAction.ANALYSIS_HOLD,
        Verdict.expand: RequestAction.ANALYSIS_EXPAND,
        Verdict.promote: RequestAction.ANALYSIS_PROMOTE,
        Verdict.roll_back: RequestAction.ANALYSIS_ROLL_BACK,
    }
)


class Outcome(StrEnum):
    """How a request ended: committed, refused by a rule, stopped while carried out, or
    waiting for a person (an approval where rollouts start by hand waits for a promote)."""

    COMMITTED = "committed"
    REFUSED = "refused"
    FAILED = "failed"
    WAITING = "waiting"


class Refused(Exception):
    """The request cannot be carried out; the message says why, for the operator."""


class Waiting(Refused):
    """Nothing is wrong, but nothing moves until a person acts; the message says who and how."""


@dataclass(frozen=True, slots=True)
class Move:
    event: type
    revision: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    action: PlanAction
    moves: tuple[Move, ...]
    load: tuple[str, ...]  # revisions every replica must list before the commit
    summary: str

    @property
    def traffic_share(self) -> int | None:
        """The canary share this plan records, which the routing must apply; None if none."""
        shares = [m.fields["traffic_percent"] for m in self.moves if "traffic_percent" in m.fields]
        return shares[0] if shares else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    environment: str
    pointer: EnvironmentPointer
    statuses: Mapping[str, RevisionStatus | None]  # the revisions a decision may name
    steps: tuple[int, ...]

    def state(self, revision: str) -> State | None:
        status = self.statuses.get(revision)
        return status.track(self.environment) if status else None


def _short(revision: str | None) -> str:
    return revision.removeprefix("sha256:")[:12] if revision else "-"


def activation(
    situation: Situation, revision: str, reason: str, evidence: Mapping[str, str] = {}
) -> Plan:
    """`revision` takes every request; the active one, if any, is superseded in the same commit."""
    previous = situation.pointer.active
    moves = []
    if previous and previous != revision:
        moves.append(Move(RevisionSuperseded, previous, {"superseded_by": revision}))
    moves.append(
        Move(
            RevisionActivated,
            revision,
            {"previous_revision": previous, "reason": reason, "evidence": dict(evidence)},
        )
    )
    return Plan(PlanAction.ACTIVATE, tuple(moves), (revision,), f"{_short(revision)} active")


def plan_rollout(
    situation: Situation,
    revision: str,
    *,
    percent: int = 0,
    tenants: Sequence[str] = (),
    reason: str,
) -> Plan:
    """Start `revision`: at `percent` or to `tenants`, else by the environment's canary steps."""
    pointer, state = situation.pointer, situation.state(revision)
    if state is State.CANARY and pointer.canary == revision:
        return activation(situation, revision, reason or "promoted by an operator")
    if state is not State.APPROVED:
        raise Refused(
            f"{revision} is {state.value if state else 'unknown'} in {situation.environment}: "
            "only an approved revision can be rolled out"
        )
    if pointer.canary and pointer.canary != revision:
        raise Refused(
            f"canary {pointer.canary} is in progress in {situation.environment}: "
            "abort it or let it finish first"
        )
    if percent >= 100:
        return activation(situation, revision, reason or "activated by an operator")
    if not percent and not tenants:
        first = situation.steps[0] if situation.steps else 100
        if first >= 100:
            return activation(situation, revision, reason or "the environment has no canary steps")
        if pointer.active is None:
            return activation(
                situation, revision, reason or "nothing serves yet: no traffic to shift from"
            )
        percent = first
    fields = {"traffic_percent": percent, "tenants": list(tenants)}
    fields["stable_revision"] = pointer.active
    share = f"{percent}%" + (f" and tenants {', '.join(tenants)}" if tenants else "")
    return Plan(
        PlanAction.CANARY,
        (Move(CanaryStarted, revision, fields),),
        (revision,),
        f"{_short(revision)} canary at {share}",
    )


def plan_expand(
    situation: Situation,
    revision: str,
    percent: int,
    *,
    reason: str = "",
    evidence: Mapping[str, str] = {},
) -> Plan:
    """Give the canary `revision` a larger share; reaching 100 activates it."""
    pointer = situation.pointer
    if pointer.canary != revision:
        raise Refused(f"{revision} is not the canary in {situation.environment}")
    if percent <= pointer.canary_percent:
        raise Refused(
            f"the canary already takes {pointer.canary_percent}%: expand it to more than that"
        )
    if percent >= 100:
        return activation(situation, revision, reason or "canary expanded to 100%", evidence)
    fields = {
        "traffic_percent": percent,
        "tenants": list(pointer.canary_tenants),
        "evidence": {**evidence, **({"reason": reason} if reason else {})},
    }
    return Plan(
        PlanAction.EXPAND,
        (Move(CanaryExpanded, revision, fields),),
        (revision,),
        f"{_short(revision)} canary at {percent}%",
    )


def plan_rollback(
    situation: Situation,
    to_revision: str | None,
    *,
    reason: str,
    evidence: Mapping[str, str] = {},
    target_refusal: str | None = None,
) -> Plan:
    """Stop the canary, if any; then, unless only the canary was meant, restore a revision.

    Without `to_revision`, a running canary alone is rolled back (the newest change);
    with no canary, the active revision gives way to the rollback target.
    """
    pointer = situation.pointer
    moves: list[Move] = []
    facts = {"reason": reason, "evidence": dict(evidence)}
    if pointer.canary:
        only_canary = to_revision is None or to_revision == pointer.active
        # The registry holds a rollback to what it claims to restore once the commit is
        # done: with the active revision rolled back too, that is the named revision.
        restored = pointer.active if only_canary else to_revision
        moves.append(
            Move(RevisionRolledBack, pointer.canary, {"restored_revision": restored, **facts})
        )
        if only_canary:
            load = (pointer.active,) if pointer.active else ()
            summary = f"canary {_short(pointer.canary)} rolled back"
            return Plan(PlanAction.ROLLBACK, tuple(moves), load, summary)
    target = to_revision or pointer.rollback_target
    if pointer.active is None:
        raise Refused(f"nothing is active in {situation.environment}: nothing to roll back")
    if target is None:
        raise Refused(
            f"{situation.environment} has no rollback target: name a retained revision with --to"
        )
    if target == pointer.active:
        raise Refused(f"{target} is already active in {situation.environment}")
    if target_refusal:
        raise Refused(target_refusal)
    moves.append(Move(RevisionRolledBack, pointer.active, {"restored_revision": target, **facts}))
    moves.append(
        Move(
            RevisionActivated,
            target,
            {"previous_revision": pointer.active, "reason": f"rollback: {reason}", "evidence": {}},
        )
    )
    summary = f"{_short(pointer.active)} rolled back, {_short(target)} active"
    return Plan(PlanAction.ROLLBACK, tuple(moves), (target,), summary)


def plan_abort(
    situation: Situation, revision: str | None, *, reason: str, evidence: Mapping[str, str] = {}
) -> Plan:
    canary = situation.pointer.canary
    if canary is None or (revision is not None and revision != canary):
        raise Refused(f"{revision or 'no revision'} is not the canary in {situation.environment}")
    return plan_rollback(situation, None, reason=reason, evidence=evidence)


def operator_refusal(
    actor: Actor,
    held: Collection[str],
    approvers: Sequence[str],
    approver_may_operate: bool,
    revision: str,
    persons: Mapping[str, str] | None = None,
) -> str | None:
    """Why `actor` may not move `revision` forward, or None when it may.

    `held` is what the registry's principals say `actor.principal` holds now (its active
    roles): a command's stated role counts only if the registry grants it, so an unknown or
    revoked principal, or a role typed into a command, is refused where it is carried out.
    Only operators and admins operate; where the environment separates duties, no person
    who approved the revision (under any of their principals: `persons` maps a principal
    name to its person, from the registry) may promote or expand it (rollbacks and aborts
    stay open to all operators: stopping harm must never wait for a second person).
    """
    if not held:
        return f"{actor.principal} is no active principal (unknown or revoked): refused"
    if actor.role not in held:
        holds = ", ".join(sorted(held))
        return f"{actor.principal} holds {holds}, not {actor.role}: refused"
    if actor.role not in OPERATING_ROLES:
        return f"{actor.principal} acts as {actor.role}; only an operator or admin may do this"
    known = persons or {}

    def person(name: str) -> str:
        return known.get(name) or canonical(name)

    approved_as = [a for a in approvers if person(a) == person(actor.principal)]
    if not approver_may_operate and approved_as:
        same = "" if approved_as == [actor.principal] else f" (as {', '.join(approved_as)})"
        return (
            f"{actor.principal} approved {revision}{same} and this environment separates "
            "approving from operating: another operator must do it"
        )
    return None
