"""Whether an approver's ballot counts, and what it decides: pure, no I/O, no clock.

The rules: only a revision evaluated (and not yet decided) in the environment awaits a
decision; its submitter takes no decision on it; a ballot names the manifest and report
digests it was cast on, and counts only if they are still the current ones; one person
counts once; one denial decides; the Nth distinct person's approval approves. Duties are
compared by person (`Situation.persons`, from the registry's principals; a name with no
principal is its own canonical self), so a variant spelling or a second principal of the
same person is the same person. The submitter is a string on the revision's events, not
always a vetted principal name (older events), so a ballot is refused also when its
person merely looks like the submitter (`shared.identity.skeleton`): `carol` spelt with a
Cyrillic a is carol's revision for carol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shared.identity import canonical, skeleton
from shared.lifecycle import State


class Choice(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class Outcome(StrEnum):
    RECORDED = "recorded"  # a partial approval: more distinct approvers are needed
    APPROVED = "approved"
    DENIED = "denied"


class Reason(StrEnum):
    """Why a ballot is refused; the value is the problem type's slug."""

    NOT_AWAITING = "not-awaiting-decision"
    ALREADY_DECIDED = "already-decided"
    SEPARATION_OF_DUTIES = "separation-of-duties"
    STALE_EVIDENCE = "stale-evidence"
    STALE_CONTRACT = "stale-serving-contract"
    NO_BALLOT = "no-ballot"
    ALREADY_APPROVED = "already-approved"


class Refused(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# Every environment state a decision has already moved past.
DECIDED: frozenset[State] = frozenset(
    {
        State.APPROVED,
        State.DENIED,
        State.CANARY,
        State.ACTIVE,
        State.SUPERSEDED,
        State.ROLLED_BACK,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    """What the registry and the read model say about one revision in one environment."""

    state: State | None  # the environment track's state
    revision_state: State | None  # the revision track's state
    submitter: str | None
    manifest_digest: str | None
    report_digest: str | None  # None: no evaluation seen in this environment
    required_approvals: int
    approvals: tuple[str, ...] = ()  # distinct approvers so far, in the order they approved
    persons: Mapping[str, str] = field(default_factory=dict)  # principal name -> person

    def person(self, name: str) -> str:
        """Who `name` is, for separation of duties."""
        return self.persons.get(name) or canonical(name)

    def submitted_by(self, person: str) -> bool:
        """Whether `person` is, or looks like, the submitter: its canonical name or the
        person of its principal (fail closed: a look-alike is refused, not let through)."""
        if self.submitter is None:
            return False
        submitters = {canonical(self.submitter), self.person(self.submitter)}
        return skeleton(person) in {skeleton(s) for s in submitters}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ballot:
    principal: str
    choice: Choice
    manifest_digest: str
    report_digest: str
    comment: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    outcome: Outcome
    approvers: tuple[str, ...]  # every approver so far with this ballot; the denier for a denial

    @property
    def final(self) -> bool:
        """A decision to commit to the lifecycle log (not a partial approval)."""
        return self.outcome is not Outcome.RECORDED


def decide(situation: Situation, ballot: Ballot) -> Verdict:
    """What `ballot` does in `situation`, or Refused with the reason."""
    state = situation.state
    if state in DECIDED:
        raise Refused(Reason.ALREADY_DECIDED, f"the decision is taken: its track is {state}")
    if state is not State.EVALUATED or situation.revision_state is not State.VALIDATED:
        shown = state.value if state else "not started"
        raise Refused(
            Reason.NOT_AWAITING,
            f"it does not await a decision: its track is {shown}, "
            f"the revision is {situation.revision_state or 'unknown'}",
        )
    who = situation.person(ballot.principal)
    if situation.submitter is not None and situation.submitted_by(who):
        same = (
            ""
            if ballot.principal == situation.submitter
            else f" ({who}, as {situation.submitter!r})"
        )
        raise Refused(
            Reason.SEPARATION_OF_DUTIES,
            f"{ballot.principal} submitted this revision{same} and so takes no decision on it",
        )
    if situation.report_digest is None:
        raise Refused(
            Reason.NOT_AWAITING,
            "its evaluation has not reached the approval service yet; retry in a moment",
        )
    stale = [
        f"{what} is {current}, not {named}"
        for what, current, named in (
            ("the manifest", situation.manifest_digest, ballot.manifest_digest),
            ("the evaluation report", situation.report_digest, ballot.report_digest),
        )
        if current != named
    ]
    if stale:
        raise Refused(
            Reason.STALE_EVIDENCE,
            "the ballot names other evidence than the current one: " + "; ".join(stale),
        )
    earlier = [a for a in situation.approvals if situation.person(a) == who]
    if earlier:
        same = "" if earlier == [ballot.principal] else f" as {', '.join(earlier)} ({who})"
        raise Refused(
            Reason.ALREADY_APPROVED,
            f"{ballot.principal} already approved{same}; "
            f"{_missing(situation)} more distinct person(s) needed",
        )
    if ballot.choice is Choice.DENY:
        return Verdict(outcome=Outcome.DENIED, approvers=(ballot.principal,))
    approvers = (*situation.approvals, ballot.principal)
    enough = len(approvers) >= max(1, situation.required_approvals)
    return Verdict(outcome=Outcome.APPROVED if enough else Outcome.RECORDED, approvers=approvers)


def _missing(situation: Situation) -> int:
    return max(1, situation.required_approvals) - len(situation.approvals)
