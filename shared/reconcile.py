"""The log against the registry: every place where the two tell a different story.

The registry (PostgreSQL) and the lifecycle log are written from one transaction (the
outbox), so they can differ only by the relay's lag, or because someone changed one of
them behind the other's back: a forged event on the topic, a dropped tail, a row edited
in the database. Pure: the caller reads both and hands them over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.audit import Entry, Position, Problem
from shared.lifecycle import RevisionStatus
from shared.pointers import EnvironmentPointer, Ledger

CODE = "registry_disagrees"


def disagreements(
    topic: str,
    accepted: Sequence[Entry],
    ledger: Ledger,
    heads: Mapping[str, tuple[int, str, int]],
    statuses: Mapping[tuple[str, str], RevisionStatus],
    pointers: Mapping[tuple[str, str], EnvironmentPointer],
) -> list[Problem]:
    """One problem per disagreement; an adapter whose chain heads differ is judged by that
    alone (its states and pointers follow from the events either side is missing)."""
    last: dict[str, Entry] = {}
    for link in accepted:
        if link.event is not None:
            last[link.event.envelope.adapter] = link
    problems: list[Problem] = []
    settled: set[str] = set()

    def report(adapter: str, message: str, entry: Entry | None = None) -> None:
        if entry is not None and entry.event is not None:
            env = entry.event.envelope
            problems.append(
                Problem(
                    entry.position,
                    CODE,
                    message,
                    adapter,
                    env.seq,
                    env.event_id,
                    type(entry.event).__name__,
                )
            )
        else:
            problems.append(Problem(Position(f"registry:{adapter}", 0, 0), CODE, message, adapter))

    for adapter in sorted(set(heads) | set(last)):
        entry = last.get(adapter)
        log_seq = entry.event.envelope.seq if entry and entry.event else 0
        log_hash = entry.event.envelope.hash if entry and entry.event else ""
        committed, committed_hash, published = heads.get(adapter, (0, "", 0))
        if log_seq > committed:
            report(
                adapter,
                f"the log reaches seq {log_seq}, the registry committed only up to seq "
                f"{committed}: events on the log the registry never committed (forged?)",
                entry,
            )
        elif log_seq < published:
            report(
                adapter,
                f"the relay published up to seq {published}, the log ends at seq {log_seq}: "
                "published events are missing from the log (a dropped tail)",
                entry,
            )
        elif log_seq == committed and log_hash != committed_hash:
            report(
                adapter,
                f"seq {log_seq} has hash {log_hash[:16]} on the log and {committed_hash[:16]} "
                "in the registry: one of them was rewritten",
                entry,
            )
        else:
            settled.add(adapter)  # equal, or the registry is ahead only by the relay's lag
    for key in sorted(set(statuses) | set(ledger.statuses)):
        adapter, revision = key
        if adapter not in settled or heads.get(adapter, (0, "", 0))[0] != _seq(last, adapter):
            continue
        ours, theirs = ledger.statuses.get(key), statuses.get(key)
        if ours != theirs:
            report(
                adapter,
                f"revision {revision}: the log folds to {_status(ours)}, the registry holds "
                f"{_status(theirs)}",
                last.get(adapter),
            )
    for key in sorted(set(pointers) | set(ledger.pointers)):
        adapter, environment = key
        if adapter not in settled or heads.get(adapter, (0, "", 0))[0] != _seq(last, adapter):
            continue
        ours_p = ledger.pointers.get(key, EnvironmentPointer())
        theirs_p = pointers.get(key, EnvironmentPointer())
        if ours_p != theirs_p:
            report(
                adapter,
                f"environment {environment!r}: the log says {_pointer(ours_p)}, the registry "
                f"says {_pointer(theirs_p)}",
                last.get(adapter),
            )
    return problems


def _seq(last: Mapping[str, Entry], adapter: str) -> int:
    entry = last.get(adapter)
    return entry.event.envelope.seq if entry and entry.event else 0


def _status(status: RevisionStatus | None) -> str:
    if status is None:
        return "nothing"
    tracks = ", ".join(f"{e}={s.value}" for e, s in sorted(status.environment_tracks.items()))
    head = status.revision_track.value if status.revision_track else "(none)"
    return f"{head}" + (f" [{tracks}]" if tracks else "")


def _pointer(p: EnvironmentPointer) -> str:
    canary = f", canary {p.canary} at {p.canary_percent}%" if p.canary else ""
    return f"active {p.active}{canary}, rollback target {p.rollback_target}"
