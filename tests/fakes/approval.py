"""The approval service's own tables in memory: `InMemoryApprovalStore` implements
`ApprovalReads` (with its ballot transaction) and `ProjectionStore` from
`services.approval.ports`, with the semantics of migration 003.

It reads revisions from the registry it is given, as the SQL joins the registry's
`revisions` table, and records inbox entries in that registry's inbox, as PostgreSQL keeps
one `inbox` table for both. A transaction is all or nothing and one at a time, as the row
lock on the evaluation makes it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.approval.decisions import Choice
from services.approval.ports import (
    BallotRow,
    DecisionRow,
    Evaluation,
    Pending,
    Projected,
    Submission,
)
from services.approval.projection import evaluation_of
from services.approval.readmodel import waits_for_decision
from services.approval.sessions import new_session_id, session_hash
from shared.decisions import ConflictingDecision
from shared.events import (
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.identity import canonical
from shared.registry.port import Registry
from shared.registry.principals import Persons
from shared.signing import APPROVED, DENIED

Key = tuple[str, str, str]  # (adapter, revision, environment)


class DuplicateBallot(Exception):
    """The principal cast a ballot on this revision and environment already (the primary key)."""


@dataclass
class _Tables:
    """The four tables of migration 003 that the service writes."""

    submissions: dict[tuple[str, str], Submission] = field(default_factory=dict)
    evaluations: dict[Key, Evaluation] = field(default_factory=dict)
    ballots: dict[Key, list[BallotRow]] = field(default_factory=dict)
    decisions: dict[Key, DecisionRow] = field(default_factory=dict)
    inbox: set[str] = field(default_factory=set)  # event ids projected (migration 002)

    def copy(self) -> _Tables:
        """A copy to write in, swapped in when its transaction ends well."""
        return _Tables(
            dict(self.submissions),
            dict(self.evaluations),
            {k: list(v) for k, v in self.ballots.items()},
            dict(self.decisions),
            set(self.inbox),
        )


def _record_decision(tables: _Tables, event: RevisionApproved | RevisionDenied) -> None:
    """Insert the decision unless its key or its event id is there (ON CONFLICT DO NOTHING)."""
    env = event.envelope
    key = (env.adapter, env.revision, env.environment)
    if key in tables.decisions or any(
        d.event_id == env.event_id for d in tables.decisions.values()
    ):
        return
    approved = isinstance(event, RevisionApproved)
    approvers = (
        tuple(event.approvers) if isinstance(event, RevisionApproved) else (env.actor.principal,)
    )
    tables.decisions[key] = DecisionRow(
        decision=APPROVED if approved else DENIED,
        approvers=approvers,
        event_id=env.event_id,
        key_id=event.key_id,
        decided_at=env.occurred_at,
    )


class InMemoryBallotBox:
    """Implements `BallotBox` on a transaction's copy of the tables."""

    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    async def evaluation(self, adapter: str, revision: str, environment: str) -> Evaluation | None:
        """The evaluation; the store's transaction lock stands in for the row lock."""
        return self._t.evaluations.get((adapter, revision, environment))

    async def ballots(self, adapter: str, revision: str, environment: str) -> list[BallotRow]:
        """The ballots in the order they were cast."""
        return list(self._t.ballots.get((adapter, revision, environment), []))

    async def cast_ballot(
        self,
        adapter: str,
        revision: str,
        environment: str,
        *,
        principal: str,
        choice: Choice,
        comment: str,
        manifest_digest: str,
        report_digest: str,
    ) -> None:
        """Record a ballot; DuplicateBallot where PostgreSQL raises a unique violation."""
        cast = self._t.ballots.setdefault((adapter, revision, environment), [])
        if any(b.principal == principal for b in cast):
            raise DuplicateBallot(f"{principal} already cast a ballot on {adapter}@{revision}")
        cast.append(
            BallotRow(
                principal=principal, decision=choice, comment=comment, cast_at=datetime.now(UTC)
            )
        )

    async def withdraw_ballot(
        self, adapter: str, revision: str, environment: str, *, principal: str
    ) -> bool:
        """Remove the principal's ballot; False when they cast none."""
        cast = self._t.ballots.get((adapter, revision, environment), [])
        kept = [b for b in cast if b.principal != principal]
        self._t.ballots[(adapter, revision, environment)] = kept
        return len(kept) != len(cast)

    async def record_decision(self, event: RevisionApproved | RevisionDenied) -> None:
        """Record the committed decision; a no-op when it is recorded already."""
        _record_decision(self._t, event)


class InMemoryApprovalStore:
    """Implements `ApprovalReads` and `ProjectionStore` in memory, beside `registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._t = _Tables()
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryBallotBox]:
        """One ballot's transaction: serialised, and kept only when it ends without error."""
        async with self._lock:
            work = self._t.copy()
            yield InMemoryBallotBox(work)
            self._t = work

    async def project(self, event: Projected) -> bool:
        """Write `event` unless it was projected already (its own inbox); False when it was."""
        if event.envelope.event_id in self._t.inbox:
            return False
        env = event.envelope
        kept = self._t.decisions.get((env.adapter, env.revision, env.environment))
        decision = isinstance(event, RevisionApproved | RevisionDenied)
        if decision and kept is not None and kept.event_id != env.event_id:
            # As PostgresProjection: refused, and nothing (not even the inbox entry) is kept.
            raise ConflictingDecision(
                f"conflicting_decision: {env.event_id} decides {env.adapter}@{env.revision}"
                f" in {env.environment}, where decision {kept.event_id} already stands"
            )
        self._t.inbox.add(event.envelope.event_id)
        if isinstance(event, RevisionRegistered):
            self._t.submissions.setdefault(
                (env.adapter, env.revision),
                Submission(
                    manifest_digest=event.manifest_digest,
                    manifest_uri=event.manifest_uri,
                    submitter=event.submitter,
                    findings=(),
                ),
            )
        elif isinstance(event, RevisionValidated):
            found = self._t.submissions.get((env.adapter, env.revision))
            if found is not None:  # an UPDATE of no row
                self._t.submissions[(env.adapter, env.revision)] = dataclasses.replace(
                    found, findings=tuple(event.findings)
                )
        elif isinstance(event, RevisionEvaluated):
            self._t.evaluations.setdefault(
                (env.adapter, env.revision, env.environment), evaluation_of(event)
            )
        else:
            _record_decision(self._t, event)
        return True

    async def pending(self, environment: str) -> list[Pending]:
        """Evaluated, undecided revisions in `environment`, oldest evaluation first."""
        found = []
        for (adapter, revision, env), evaluation in self._t.evaluations.items():
            record = await self.registry.revision(adapter, revision)
            if env != environment or record is None:
                continue
            if not waits_for_decision(record.status, env):
                continue
            approvals = tuple(
                b.principal
                for b in self._t.ballots.get((adapter, revision, env), [])
                if b.decision is Choice.APPROVE
            )
            found.append(
                Pending(
                    evaluation=evaluation,
                    submitter=record.submitter,
                    manifest_digest=record.manifest_digest,
                    approvals=approvals,
                )
            )
        return sorted(
            found,
            key=lambda p: (p.evaluation.evaluated_at, p.evaluation.adapter, p.evaluation.revision),
        )

    async def evaluation(self, adapter: str, revision: str, environment: str) -> Evaluation | None:
        """The evaluation a decision in `environment` is made on."""
        return self._t.evaluations.get((adapter, revision, environment))

    async def submission(self, adapter: str, revision: str) -> Submission | None:
        """What registration and validation said about the revision."""
        return self._t.submissions.get((adapter, revision))

    async def ballots(self, adapter: str, revision: str, environment: str) -> list[BallotRow]:
        """The ballots in the order they were cast."""
        return list(self._t.ballots.get((adapter, revision, environment), []))

    async def decision(self, adapter: str, revision: str, environment: str) -> DecisionRow | None:
        """The decision recorded for the revision in `environment`."""
        return self._t.decisions.get((adapter, revision, environment))


def persons_of(table: Mapping[str, str] | None = None) -> Persons:
    """The registry's persons, from a table: each name's person (default: itself, canonical)."""
    known = dict(table or {})

    async def persons(names: Collection[str]) -> dict[str, str]:
        return {name: known.get(canonical(name), canonical(name)) for name in names}

    return persons


class InMemorySessions:
    """Implements `sessions.Sessions` in memory, as `PostgresSessions` does in its table."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, datetime]] = {}  # id hash -> (token hash, expiry)

    async def open(self, token_hash: str, expires_at: datetime) -> str:
        session_id = new_session_id()
        self.rows[session_hash(session_id)] = (token_hash, expires_at)
        return session_id

    async def token_hash(self, session_id: str, now: datetime) -> str | None:
        found = self.rows.get(session_hash(session_id))
        return found[0] if found is not None and found[1] > now else None

    async def close(self, session_id: str) -> None:
        self.rows.pop(session_hash(session_id), None)
