"""Ingest's handler: copy and hash the trained adapter, write its manifest, register it."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import asdict, replace
from datetime import UTC, datetime

import structlog

from services.ingest.deps import IngestDeps
from services.ingest.ports import ArtifactSource, Limits, SourceRefused
from shared.artifacts import ArtifactStore
from shared.events import (
    Actor,
    AdapterTrained,
    BaseModelRef,
    Envelope,
    Finding,
    RevisionRegistered,
    RevisionRejected,
    caused_envelope,
)
from shared.findings import FindingCode
from shared.flow import ServiceFlow, Topic
from shared.kafka.dispatch import Handler, PermanentError
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.registry.port import ConcurrentTransition, Step
from shared.registry.principals import Role

log = structlog.get_logger(__name__)

CONSUMER = "ingest"
ADAPTER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def copy_artifact(
    source: ArtifactSource, store: ArtifactStore, uri: str, limits: Limits
) -> list[FileEntry]:
    """Stream every file into the store, hashing as it goes (blocking: run in a thread)."""
    entries = []
    for listed in source.list_files(uri, limits):
        with source.open(listed) as stream:
            stored = store.put_stream(stream, max_bytes=limits.max_file_bytes)
        if stored.size != listed.size:
            raise SourceRefused(
                FindingCode.SOURCE_CHANGED,
                f"{listed.path} changed while it was copied ({listed.size} -> {stored.size} bytes)",
            )
        entries.append(FileEntry(path=listed.path, sha256=stored.sha256, size=stored.size))
    return entries


def check_request(event: AdapterTrained) -> None:
    """Dead-letter a trained event that cannot even name a revision safely."""
    if not UUID.match(event.event_id):
        # The id is the inbox key: a blank or reused one would make later events duplicates.
        raise PermanentError(f"invalid_event_id: {event.event_id!r} must be a UUID")
    if not ADAPTER_NAME.match(event.adapter):
        raise PermanentError(
            f"invalid_adapter_name: {event.adapter!r} must match {ADAPTER_NAME.pattern}"
        )
    if not event.base_model.model_id or not event.base_model.revision:
        raise PermanentError("base_model_unspecified: base model id and revision are required")
    if not event.submitter.strip():
        # Separation of duties keeps the submitter from approving: it must know who that is.
        raise PermanentError("submitter_unspecified: the submitter is required")


async def check_submitter(event: AdapterTrained, deps: IngestDeps) -> None:
    """Dead-letter a submission whose submitter holds no active trainer token now: only
    ingest's API writes the trained topic, for the trainer its token proves, so anything
    else is a forgery (or a trainer revoked since), and never reaches the audit log."""
    if Role.TRAINER not in await deps.roles_of(event.submitter):
        log.error("submitter_unauthenticated", adapter=event.adapter, submitter=event.submitter)
        raise PermanentError(
            f"submitter_unauthenticated: {event.submitter!r} holds no active trainer "
            "token; a training cluster submits through ingest's API (adapterctl submit)"
        )


def manifest_for(event: AdapterTrained, files: list[FileEntry]) -> Manifest:
    return Manifest(
        adapter=event.adapter,
        revision=revision_digest(files),
        files=tuple(sorted(files, key=lambda f: f.path)),
        base_model_id=event.base_model.model_id,
        base_model_revision=event.base_model.revision,
        tokenizer_revision=event.tokenizer_revision,
        tokenizer_hash=event.tokenizer_hash,
        chat_template_hash=event.chat_template_hash,
        quantization_profile=event.quantization_profile,
        target_environments=tuple(event.target_environments),
        recipe=asdict(event.recipe),
        data_scope=asdict(event.data_scope),
        submitter=event.submitter,
        trained_event_id=event.event_id,
        source_uri=event.artifact_uri,
    )


def _caused_by_trained(
    event: AdapterTrained, revision: str, event_type: str, actor: Actor
) -> Envelope:
    """The trained event starts the revision's story: it is the cause and the correlation."""
    return caused_envelope(
        cause_id=event.event_id,
        correlation_id=event.event_id,
        adapter=event.adapter,
        revision=revision,
        event_type=event_type,
        actor=actor,
        occurred_at=datetime.now(UTC),
    )


def _registered(
    event: AdapterTrained, revision: str, digest: str, files: list[FileEntry], uri: str
) -> RevisionRegistered:
    return RevisionRegistered(
        envelope=_caused_by_trained(
            event, revision, "RevisionRegistered", Actor(principal=event.submitter, role="trainer")
        ),
        manifest_digest=digest,
        manifest_uri=uri,
        base_model=BaseModelRef(
            model_id=event.base_model.model_id, revision=event.base_model.revision
        ),
        tokenizer_revision=event.tokenizer_revision,
        tokenizer_hash=event.tokenizer_hash,
        chat_template_hash=event.chat_template_hash,
        quantization_profile=event.quantization_profile,
        target_environments=list(event.target_environments),
        submitter=event.submitter,
        file_count=len(files),
        total_bytes=sum(f.size for f in files),
        trained_event_id=event.event_id,
    )


async def on_adapter_trained(event: AdapterTrained, deps: IngestDeps) -> None:
    bound = log.bind(adapter=event.adapter, trained_event_id=event.event_id)
    if await deps.registry.handled(CONSUMER, event.event_id):
        bound.info("trained_event_already_ingested")
        return
    check_request(event)
    await check_submitter(event, deps)
    try:
        files = await asyncio.to_thread(
            copy_artifact, deps.source, deps.store, event.artifact_uri, deps.limits
        )
    except SourceRefused as refused:
        await _reject_unstorable(event, refused, deps)
        bound.warning("artifact_refused", code=refused.code, reason=refused.message)
        return
    manifest = manifest_for(event, files)
    digest = deps.store.put_manifest(manifest)
    deps.store.materialize(manifest)
    registered = _registered(
        event, manifest.revision, digest, files, f"artifact://manifests/{digest}"
    )
    try:
        result = await deps.registry.commit(
            [Step(registered, expected_version=0)], inbox=(CONSUMER, event.event_id)
        )
    except ConcurrentTransition:
        result = None  # the same bytes are already registered: one revision, not two
    if result is None or result.duplicate:
        await deps.registry.record_handled(CONSUMER, event.event_id)
        bound.info("revision_already_registered", revision=manifest.revision)
        return
    bound.info("revision_registered", revision=manifest.revision, manifest_digest=digest)


async def _reject_unstorable(
    event: AdapterTrained, refused: SourceRefused, deps: IngestDeps
) -> None:
    """No content could be stored, so no content digest exists: the revision id is derived
    from the trained event instead, and the refusal is on the audit log like any other."""
    revision = "sha256:" + hashlib.sha256(f"refused\n{event.event_id}".encode()).hexdigest()
    registered = _registered(event, revision, "", [], "")
    rejected = RevisionRejected(
        # Its id derives from the trained event like the registration's; its cause on the
        # log is the registration it follows in the same commit.
        envelope=replace(
            _caused_by_trained(
                event, revision, "RevisionRejected", Actor(principal="ingest", role="service")
            ),
            causation_id=registered.envelope.event_id,
        ),
        findings=[
            Finding(
                code=refused.code,
                severity="error",
                message=refused.message,
                evidence={"artifact_uri": event.artifact_uri, **refused.evidence},
            )
        ],
    )
    await deps.registry.commit(
        [Step(registered, expected_version=0), Step(rejected)], inbox=(CONSUMER, event.event_id)
    )


def handlers(deps: IngestDeps) -> dict[type, Handler]:
    async def trained(event: AdapterTrained) -> None:
        await on_adapter_trained(event, deps)

    return {AdapterTrained: trained}


FLOW = ServiceFlow(
    service="ingest",
    consumes=(Topic.TRAINED,),
    handles=(AdapterTrained,),
    emits=(RevisionRegistered, RevisionRejected),
    inputs=("HTTP: POST /submissions, by a trainer's token",),
)
