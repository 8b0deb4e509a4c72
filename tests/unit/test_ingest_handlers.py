"""Ingest's handler against the in-memory registry: what a trained adapter commits, what a
redelivery changes (nothing), and how an artifact that cannot be stored is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.ingest.adapters import LocalDirectorySource
from services.ingest.deps import IngestDeps
from services.ingest.handlers import CONSUMER, handlers, on_adapter_trained
from services.ingest.ports import ArtifactSource, Limits
from shared.artifacts import LocalArtifactStore
from shared.events import AdapterTrained, BaseModelRef, RevisionRegistered, RevisionRejected
from shared.kafka.dispatch import PermanentError
from shared.lifecycle import State
from shared.manifest import revision_digest
from shared.registry.memory import InMemoryRegistry
from tests.fakes.activator import held_roles
from tests.fakes.ingest import InMemorySource, trained

ADAPTER = "support-bot"
URI = "file:///incoming/support-bot/run-1"
# The registry's principals: the samples' submitter holds a trainer token; the others not.
TRAINERS = {
    "trainer-7@example.internal": {"trainer"},
    "approver-amy": {"approver"},
    "revoked-rick": set(),
}
FILES = {
    "adapter_config.json": b'{"r": 8, "lora_alpha": 16}',
    "adapter_model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      weights",
}


def deps_for(tmp_path: Path, source: ArtifactSource | None = None) -> IngestDeps:
    return IngestDeps(
        registry=InMemoryRegistry(),
        store=LocalArtifactStore(tmp_path / "store"),
        source=source or InMemorySource({URI: FILES}),
        limits=Limits(max_file_bytes=1 << 20, max_total_bytes=4 << 20, max_files=16),
        roles_of=held_roles(TRAINERS),
    )


def committed(deps: IngestDeps) -> list[str]:
    registry: Any = deps.registry
    return [entry.event_type.rsplit(".", 1)[-1] for entry in registry.outbox]


async def test_a_trained_adapter_is_stored_and_registered_as_one_revision_bound_to_its_manifest(
    tmp_path: Path,
) -> None:
    deps = deps_for(tmp_path)
    event = trained(ADAPTER, URI)
    await handlers(deps)[AdapterTrained](event)

    assert committed(deps) == ["RevisionRegistered"]
    [registered] = await deps.registry.events(ADAPTER)
    assert isinstance(registered, RevisionRegistered)
    manifest = deps.store.get_manifest(registered.manifest_digest)
    assert registered.envelope.revision == manifest.revision == revision_digest(manifest.files)
    assert sorted(f.path for f in manifest.files) == sorted(FILES)
    assert (registered.file_count, registered.total_bytes) == (2, sum(map(len, FILES.values())))
    assert registered.manifest_uri == f"artifact://manifests/{registered.manifest_digest}"
    assert registered.envelope.causation_id == registered.envelope.correlation_id == event.event_id
    assert registered.submitter == manifest.submitter == event.submitter
    assert registered.trained_event_id == manifest.trained_event_id == event.event_id
    record = await deps.registry.revision(ADAPTER, manifest.revision)
    assert record is not None and record.version == 1
    assert record.status.revision_track is State.REGISTERED
    assert record.manifest_digest == registered.manifest_digest
    store = LocalArtifactStore(tmp_path / "store")
    assert store.revision_dir(manifest).is_dir()  # materialized for the evaluator
    assert await deps.registry.handled(CONSUMER, event.event_id)


async def test_a_redelivered_trained_event_reads_nothing_and_commits_nothing(
    tmp_path: Path,
) -> None:
    source = InMemorySource({URI: FILES})
    deps = deps_for(tmp_path, source)
    event = trained(ADAPTER, URI)
    await on_adapter_trained(event, deps)
    reads = len(source.opened)
    await on_adapter_trained(event, deps)
    assert committed(deps) == ["RevisionRegistered"]
    assert len(source.opened) == reads


async def test_the_same_bytes_trained_twice_stay_one_revision(tmp_path: Path) -> None:
    deps = deps_for(tmp_path)
    first, second = trained(ADAPTER, URI), trained(ADAPTER, URI)
    await on_adapter_trained(first, deps)
    await on_adapter_trained(second, deps)
    assert committed(deps) == ["RevisionRegistered"]
    assert len(await deps.registry.revisions(adapter=ADAPTER)) == 1
    assert await deps.registry.handled(CONSUMER, second.event_id)


async def test_changed_bytes_are_a_new_revision(tmp_path: Path) -> None:
    source = InMemorySource({URI: FILES, URI + "-2": {**FILES, "adapter_config.json": b"{}"}})
    deps = deps_for(tmp_path, source)
    await on_adapter_trained(trained(ADAPTER, URI), deps)
    await on_adapter_trained(trained(ADAPTER, URI + "-2"), deps)
    assert committed(deps) == ["RevisionRegistered", "RevisionRegistered"]
    assert len(await deps.registry.revisions(adapter=ADAPTER)) == 2


@pytest.mark.parametrize(
    ("folders", "limit", "code"),
    [
        ({}, 1 << 20, "source_missing"),
        ({URI: {}}, 1 << 20, "source_empty"),
        ({URI: FILES}, 8, "file_too_large"),
    ],
)
async def test_an_artifact_the_source_refuses_is_registered_and_rejected_in_one_commit(
    tmp_path: Path, folders: dict[str, dict[str, bytes]], limit: int, code: str
) -> None:
    deps = deps_for(tmp_path, InMemorySource(folders))
    deps.limits = Limits(max_file_bytes=limit)
    event = trained(ADAPTER, URI)
    await on_adapter_trained(event, deps)

    assert committed(deps) == ["RevisionRegistered", "RevisionRejected"]
    registered, rejected = await deps.registry.events(ADAPTER)
    assert isinstance(registered, RevisionRegistered) and isinstance(rejected, RevisionRejected)
    assert registered.manifest_digest == "" and registered.file_count == 0
    assert rejected.envelope.causation_id == registered.envelope.event_id
    assert rejected.envelope.correlation_id == event.event_id
    [finding] = rejected.findings
    assert (finding.code, finding.severity) == (code, "error")
    assert finding.evidence["artifact_uri"] == URI
    record = await deps.registry.revision(ADAPTER, registered.envelope.revision)
    assert record is not None and record.status.revision_track is State.REJECTED


async def test_a_redelivered_refused_artifact_is_rejected_once(tmp_path: Path) -> None:
    deps = deps_for(tmp_path, InMemorySource({}))
    event = trained(ADAPTER, URI)
    await on_adapter_trained(event, deps)
    await on_adapter_trained(event, deps)
    assert committed(deps) == ["RevisionRegistered", "RevisionRejected"]


async def test_a_path_outside_the_allowed_roots_is_rejected_without_being_read(
    tmp_path: Path,
) -> None:
    allowed, outside = tmp_path / "incoming", tmp_path / "elsewhere"
    allowed.mkdir()
    outside.mkdir()
    (outside / "adapter_model.safetensors").write_bytes(b"secret")
    deps = deps_for(tmp_path, LocalDirectorySource([allowed]))
    await on_adapter_trained(trained(ADAPTER, f"file://{allowed}/../elsewhere"), deps)
    _, rejected = await deps.registry.events(ADAPTER)
    assert isinstance(rejected, RevisionRejected)
    assert [f.code for f in rejected.findings] == ["path_escapes_root"]
    assert not any((tmp_path / "store" / "blobs" / "sha256").iterdir())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_id": "not-a-uuid"}, "invalid_event_id"),
        ({"adapter": "Support Bot"}, "invalid_adapter_name"),
        ({"base_model": BaseModelRef(model_id="", revision="r")}, "base_model_unspecified"),
        ({"submitter": "  "}, "submitter_unspecified"),
    ],
)
async def test_a_trained_event_that_cannot_name_a_revision_safely_is_dead_lettered(
    tmp_path: Path, changes: dict[str, Any], reason: str
) -> None:
    deps = deps_for(tmp_path)
    fields = {"adapter": ADAPTER, **changes}
    event = trained(fields.pop("adapter"), URI, **fields)
    with pytest.raises(PermanentError, match=reason):
        await on_adapter_trained(event, deps)
    assert committed(deps) == []
    assert not await deps.registry.handled(CONSUMER, event.event_id)


@pytest.mark.parametrize(
    "submitter",
    [
        "mallory",  # no principal at all: a name typed onto the topic
        "approver-amy",  # a principal, but no trainer
        "revoked-rick",  # a trainer revoked since
        "Trainer-7@example.internal",  # a variant of the trainer's name
    ],
)
async def test_a_submission_whose_submitter_holds_no_trainer_token_is_dead_lettered(
    tmp_path: Path, submitter: str
) -> None:
    deps = deps_for(tmp_path)
    event = trained(ADAPTER, URI, submitter=submitter)
    with pytest.raises(PermanentError, match="submitter_unauthenticated"):
        await on_adapter_trained(event, deps)
    assert committed(deps) == []  # nothing on the audit log names them
    assert not any((tmp_path / "store").rglob("*.safetensors"))
