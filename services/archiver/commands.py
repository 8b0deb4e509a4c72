"""Operators' retention commands: an environment's (or one adapter's) retention policy, and
legal holds. The archiver owns both; each answer is recorded under the command's id, where
`adapterctl` reads it (the archiver's read API). A refused command is dead-lettered with
its reason after its answer is recorded, as the activator does with its commands."""

from __future__ import annotations

from enum import StrEnum

import structlog

from services.archiver.deps import ArchiverDeps
from shared.events import CommandHeader, PlaceLegalHold, ReleaseLegalHold, SetRetentionPolicy
from shared.kafka.dispatch import PermanentError
from shared.lifecycle import State
from shared.retention import RetentionPolicy

log = structlog.get_logger(__name__)


class RetentionAction(StrEnum):
    SET_POLICY = "retention.set"
    PLACE_HOLD = "hold.place"
    RELEASE_HOLD = "hold.release"


class Answer(StrEnum):
    COMMITTED = "committed"
    REFUSED = "refused"


class Refused(Exception):
    """The command was understood and refused; the message says why."""


async def _answered(deps: ArchiverDeps, header: CommandHeader) -> bool:
    return await deps.rules.outcome(header.command_id) is not None


async def _answer(
    deps: ArchiverDeps,
    header: CommandHeader,
    action: RetentionAction,
    answer: Answer,
    detail: str,
    revision: str | None = None,
) -> None:
    await deps.rules.record_outcome(
        {
            "cause_id": header.command_id,
            "action": action,
            "adapter": header.adapter,
            "environment": header.environment,
            "revision": revision,
            "outcome": answer,
            "detail": detail,
            "principal": header.actor.principal,
        }
    )
    log.info("retention_command_" + answer, action=action, detail=detail)


async def _refuse(
    deps: ArchiverDeps,
    header: CommandHeader,
    action: RetentionAction,
    exc: Refused,
    revision: str | None = None,
) -> None:
    await _answer(deps, header, action, Answer.REFUSED, str(exc), revision)
    raise PermanentError(str(exc)) from exc


async def on_set_retention_policy(command: SetRetentionPolicy, deps: ArchiverDeps) -> None:
    header, action = command.header, RetentionAction.SET_POLICY
    if await _answered(deps, header):
        return  # redelivered: answered already
    try:
        policy = RetentionPolicy(
            environment=header.environment,
            adapter=header.adapter,
            keep_superseded=command.keep_superseded,
            min_age_days=command.min_age_days,
        )
    except ValueError as exc:
        await _refuse(deps, header, action, Refused(str(exc)))
        return
    async with deps.lock:  # never between a sweep's read of the rules and its decisions
        await deps.rules.save_policy(policy, header.actor.principal)
    scope = f"adapter {policy.adapter}" if policy.adapter else "every adapter"
    detail = (
        f"retention in {policy.environment} for {scope}: keep {policy.keep_superseded} "
        f"superseded, nothing younger than {policy.min_age_days} days"
    )
    await _answer(deps, header, action, Answer.COMMITTED, detail)


async def _state_of(deps: ArchiverDeps, adapter: str, revision: str) -> State | None:
    record = await deps.registry.revision(adapter, revision)
    if record is None:
        raise Refused(f"{adapter}@{revision} is not a registered revision")
    state = record.status.revision_track
    if state is State.DELETED:
        raise Refused(
            f"{adapter}@{revision} is already deleted: only its archive remains "
            f"(`adapterctl archive show {revision} --adapter {adapter}`)"
        )
    return state


async def on_place_legal_hold(command: PlaceLegalHold, deps: ArchiverDeps) -> None:
    header, action, revision = command.header, RetentionAction.PLACE_HOLD, command.revision
    if await _answered(deps, header):
        return
    try:
        if not header.reason.strip():
            raise Refused("a legal hold needs a reason (a case number, say)")
        async with deps.lock:
            state = await _state_of(deps, header.adapter, revision)
            placed = await deps.rules.place_hold(
                header.adapter, revision, header.reason, header.actor.principal
            )
        if not placed:
            raise Refused(f"{header.adapter}@{revision} is already under a legal hold")
    except Refused as exc:
        await _refuse(deps, header, action, exc, revision)
        return
    shown = state.value if state else "unknown"
    detail = f"legal hold placed on {header.adapter}@{revision} ({shown}): it will not expire"
    if state in (State.EXPIRED, State.ARCHIVED):
        detail += "; it has already expired: its weights stay until the hold is released"
    await _answer(deps, header, action, Answer.COMMITTED, detail, revision)


async def on_release_legal_hold(command: ReleaseLegalHold, deps: ArchiverDeps) -> None:
    header, action, revision = command.header, RetentionAction.RELEASE_HOLD, command.revision
    if await _answered(deps, header):
        return
    async with deps.lock:
        released = await deps.rules.release_hold(
            header.adapter, revision, header.actor.principal, header.reason
        )
    if not released:
        refused = Refused(f"{header.adapter}@{revision} is not under a legal hold")
        await _refuse(deps, header, action, refused, revision)
        return
    detail = f"legal hold on {header.adapter}@{revision} released; retention applies again"
    await _answer(deps, header, action, Answer.COMMITTED, detail, revision)


COMMANDS = (SetRetentionPolicy, PlaceLegalHold, ReleaseLegalHold)
