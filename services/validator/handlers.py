"""Validator's handler: static checks on a registered revision, then validated or rejected."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from services.validator.checks import check_revision
from services.validator.deps import ValidatorDeps
from services.validator.inputs import read_revision_inputs
from shared.artifacts import StoreError
from shared.events import (
    Actor,
    Envelope,
    Finding,
    RevisionRegistered,
    RevisionRejected,
    RevisionValidated,
)
from shared.findings import FindingCode
from shared.flow import ServiceFlow, Topic
from shared.kafka.dispatch import Handler
from shared.registry.port import Step

log = structlog.get_logger(__name__)

CONSUMER = "validator"
ACTOR = Actor(principal="validator", role="service")


async def findings_for(
    event: RevisionRegistered, deps: ValidatorDeps
) -> tuple[list[Finding], list[str]]:
    """Every finding about the revision, and the environments it was checked against."""
    try:
        manifest = deps.store.get_manifest(event.manifest_digest)
    except (StoreError, ValueError) as exc:
        return [
            Finding(code=FindingCode.MANIFEST_UNREADABLE, severity="error", message=str(exc))
        ], []
    if manifest.revision != event.envelope.revision:
        return [
            Finding(
                code=FindingCode.MANIFEST_MISMATCH,
                severity="error",
                message="the manifest names another revision than the registered event",
                evidence={"manifest": manifest.revision, "event": event.envelope.revision},
            )
        ], []
    base = await deps.catalogue.base_model(manifest.base_model_id, manifest.base_model_revision)
    environments = []
    for name in manifest.target_environments:
        spec = await deps.catalogue.environment(name)
        if spec is not None:
            environments.append(spec)
    inputs = await asyncio.to_thread(read_revision_inputs, deps.store, manifest, base, environments)
    return check_revision(inputs), [e.name for e in environments]


async def on_revision_registered(event: RevisionRegistered, deps: ValidatorDeps) -> None:
    envelope = event.envelope
    bound = log.bind(
        adapter=envelope.adapter, revision=envelope.revision, event_id=envelope.event_id
    )
    if not event.manifest_digest:
        # Ingest could store nothing and rejected the revision in the same commit.
        await deps.registry.record_handled(CONSUMER, envelope.event_id)
        return
    if await deps.registry.handled(CONSUMER, envelope.event_id):
        return
    record = await deps.registry.revision(envelope.adapter, envelope.revision)
    if record is None:
        raise LookupError(f"{envelope.adapter}@{envelope.revision} not in the registry yet")
    findings, checked = await findings_for(event, deps)
    errors = [f for f in findings if f.severity == "error"]
    reply_envelope = Envelope.caused_by(
        envelope,
        event_type="RevisionRejected" if errors else "RevisionValidated",
        actor=ACTOR,
        occurred_at=datetime.now(UTC),
    )
    reply: RevisionRejected | RevisionValidated = (
        RevisionRejected(envelope=reply_envelope, findings=findings)
        if errors
        else RevisionValidated(
            envelope=reply_envelope, findings=findings, checked_environments=checked
        )
    )
    # A ConcurrentTransition propagates: the dispatcher retries, and we re-read and decide.
    await deps.registry.commit(
        [Step(reply, expected_version=record.version)], inbox=(CONSUMER, envelope.event_id)
    )
    if errors:
        bound.warning("revision_rejected", findings=[f.code for f in errors])
    else:
        bound.info("revision_validated", warnings=[f.code for f in findings])


def handlers(deps: ValidatorDeps) -> dict[type, Handler]:
    async def registered(event: RevisionRegistered) -> None:
        await on_revision_registered(event, deps)

    return {RevisionRegistered: registered}


FLOW = ServiceFlow(
    service="validator",
    consumes=(Topic.LIFECYCLE,),
    handles=(RevisionRegistered,),
    emits=(RevisionValidated, RevisionRejected),
    inputs=(),
)
