"""Environment pointers (what serves, what canaries, what to roll back to) and the audit fold.

Pointer rules, which `move_pointer` alone applies:

- CanaryStarted(X): X becomes the canary with the event's share and tenants, replacing any
  earlier canary. CanaryExpanded(X) updates the share only while X is the canary.
- RevisionActivated(X): X becomes active; a canary X is cleared. The revision active until
  now becomes the rollback target; when no other revision was active the target is kept. The target
  is never the active revision itself.
- RevisionRolledBack(X): every field naming X is cleared. Rolling back the active revision
  also clears the rollback target: the rollback consumes it. `active` stays empty until the
  RevisionActivated of the restored revision that follows in the same transaction, so after
  a rollback the environment serves the restored revision with no rollback target, whatever
  the order of the two events. The revision active before the restored one is not
  remembered (one slot), and the rolled-back one must never be a target; the next
  activation of another revision makes the restored revision the target again.
- RevisionExpired(X): every field naming X is cleared, in every environment.
- RevisionQuarantined(X): X is no rollback target anywhere any more; where it is active or
  the canary it stays named (it still serves) until a rollback or supersession moves it off.
- Any other event leaves the pointer as it was.

So a pointer names only revisions whose track reached canary or active there and that
have been neither rolled back there nor expired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    RevisionActivated,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRolledBack,
)
from shared.lifecycle import LifecycleEvent, RevisionStatus, apply


@dataclass(frozen=True, slots=True)
class EnvironmentPointer:
    active: str | None = None
    canary: str | None = None
    canary_percent: int = 0
    canary_tenants: tuple[str, ...] = ()
    rollback_target: str | None = None


def _forget(pointer: EnvironmentPointer, revision: str) -> EnvironmentPointer:
    """The pointer with every field that names `revision` cleared."""
    if pointer.canary == revision:
        pointer = replace(pointer, canary=None, canary_percent=0, canary_tenants=())
    if pointer.active == revision:
        pointer = replace(pointer, active=None)
    if pointer.rollback_target == revision:
        pointer = replace(pointer, rollback_target=None)
    return pointer


def move_pointer(pointer: EnvironmentPointer, event: LifecycleEvent) -> EnvironmentPointer:
    """The environment's pointer after `event`, by the rules in this module's docstring.

    The caller picks the pointer of the event's environment; legality is `apply`'s job.
    """
    revision = event.envelope.revision
    match event:
        case CanaryStarted():
            return replace(
                pointer,
                canary=revision,
                canary_percent=event.traffic_percent,
                canary_tenants=tuple(event.tenants),
            )
        case CanaryExpanded() if pointer.canary == revision:
            return replace(
                pointer, canary_percent=event.traffic_percent, canary_tenants=tuple(event.tenants)
            )
        case RevisionActivated():
            replaced = pointer.active not in (None, revision)
            previous = pointer.active if replaced else pointer.rollback_target
            moved = replace(_forget(pointer, revision), active=revision)
            return replace(moved, rollback_target=None if previous == revision else previous)
        case RevisionRolledBack():
            if pointer.active == revision:
                pointer = replace(pointer, rollback_target=None)
            return _forget(pointer, revision)
        case RevisionExpired():
            return _forget(pointer, revision)
        case RevisionQuarantined() if pointer.rollback_target == revision:
            # Never rolled back to again; where it serves, it serves until moved off it.
            return replace(pointer, rollback_target=None)
    return pointer


class PointerChange(NamedTuple):
    """One move of one environment's pointer, as an auditor reads it."""

    occurred_at: datetime
    adapter: str
    environment: str
    pointer: EnvironmentPointer
    event: LifecycleEvent


@dataclass(frozen=True, slots=True)
class Ledger:
    """Every revision's status, every environment's pointer, and how the pointers moved.

    `statuses` is keyed by (adapter, revision), `pointers` by (adapter, environment);
    `history` holds one entry per pointer change, in log order.
    """

    statuses: Mapping[tuple[str, str], RevisionStatus]
    pointers: Mapping[tuple[str, str], EnvironmentPointer]
    history: tuple[PointerChange, ...]


def fold(events: Iterable[LifecycleEvent]) -> Ledger:
    """Replay lifecycle events in log order; InvalidTransition on the first illegal one."""
    statuses: dict[tuple[str, str], RevisionStatus] = {}
    pointers: dict[tuple[str, str], EnvironmentPointer] = {}
    history: list[PointerChange] = []
    for event in events:
        envelope = event.envelope
        key = (envelope.adapter, envelope.revision)
        statuses[key] = apply(statuses.get(key, RevisionStatus()), event)
        if envelope.environment:
            moved = [(envelope.adapter, envelope.environment)]
        else:  # a revision-wide fact (expiry) may touch every environment of the adapter
            moved = [k for k in pointers if k[0] == envelope.adapter]
        for adapter, environment in moved:
            before = pointers.get((adapter, environment), EnvironmentPointer())
            after = move_pointer(before, event)
            if after != before:
                pointers[adapter, environment] = after
                history.append(
                    PointerChange(envelope.occurred_at, adapter, environment, after, event)
                )
    return Ledger(MappingProxyType(statuses), MappingProxyType(pointers), tuple(history))


def pointer_at(
    ledger: Ledger, adapter: str, environment: str, t: datetime
) -> EnvironmentPointer | None:
    """The pointer in force at `t`: set by the last change at or before `t` (None: no change).

    Changes are taken in log order; the registry stamps `occurred_at` at commit, so it
    rises with the log within one adapter.
    """
    found: EnvironmentPointer | None = None
    for change in ledger.history:
        if change.occurred_at > t:
            continue
        if change.adapter == adapter and change.environment == environment:
            found = change.pointer
    return found
