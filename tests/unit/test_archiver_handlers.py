"""The archiver against the in-memory registry, a real weight store and real cold storage in
a temporary folder: the sweep, `expire`, `archive`, `delete_weights`, both lifecycle
handlers and the three retention commands. What each commits, that running it again
changes nothing, that a legal hold keeps weights, that nothing is deleted without a
verified archive, that a refused command is answered, and that a crash after any step
resumes to the same end."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.archiver.commands import (
    on_place_legal_hold,
    on_release_legal_hold,
    on_set_retention_policy,
)
from services.archiver.deps import ArchiverDeps
from services.archiver.faults import CRASH_POINTS
from services.archiver.handlers import (
    handlers,
    on_revision_expired,
    on_revision_superseded,
    sweep,
)
from services.archiver.pipeline import ArchiveNotVerified, archive, delete_weights, expire
from shared.artifacts import LocalArtifactStore
from shared.coldstore import ColdStorageError, DirectoryColdStorage
from shared.coldstore.record import archive_key, parse_record, verify_record
from shared.events import (
    CommandHeader,
    ManifestArchived,
    PlaceLegalHold,
    ReleaseLegalHold,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionSuperseded,
    RevisionValidated,
    SetRetentionPolicy,
    WeightsDeleted,
)
from shared.kafka.dispatch import PermanentError
from shared.lifecycle import State
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.registry.memory import InMemoryRegistry
from shared.registry.port import RevisionRecord
from shared.retention import ExpiryDecision, RetentionPolicy
from tests.factories import lifecycle
from tests.fakes.archiver import Clock, CrashAt, InMemoryRetentionRules, SimulatedCrash
from tests.samples import header

ADAPTER, OTHER = "support-bot", "billing-bot"
STAGING = RetentionPolicy(environment="staging", keep_superseded=0, min_age_days=7)
WAY_OUT = ["RevisionExpired", "ManifestArchived", "WeightsDeleted"]


@dataclass
class World:
    registry: InMemoryRegistry
    rules: InMemoryRetentionRules
    store: LocalArtifactStore
    cold: DirectoryColdStorage
    clock: Clock

    def deps(self, crash: CrashAt | None = None) -> ArchiverDeps:
        """The archiver's deps; called again after a crash, as a restarted process builds them."""
        deps = ArchiverDeps(
            registry=self.registry,
            rules=self.rules,
            store=self.store,
            cold=self.cold,
            clock=self.clock,
        )
        return dataclasses.replace(deps, crash=crash) if crash else deps

    def types(self, adapter: str = ADAPTER) -> list[str]:
        return [
            e.event_type.rsplit(".", 1)[-1] for e in self.registry.outbox if e.adapter == adapter
        ]

    async def track(self, revision: str, adapter: str = ADAPTER) -> State | None:
        record = await self.registry.revision(adapter, revision)
        assert record is not None
        return record.status.revision_track


@pytest.fixture
def world(tmp_path: Path) -> World:
    clock = Clock()
    return World(
        registry=InMemoryRegistry(clock=clock),
        rules=InMemoryRetentionRules([STAGING]),
        store=LocalArtifactStore(tmp_path / "store"),
        cold=DirectoryColdStorage(tmp_path / "cold"),
        clock=clock,
    )


def stored(world: World, adapter: str, weights: bytes) -> tuple[Manifest, str]:
    """Two files stored and materialized, and their manifest written, as ingest leaves them."""
    entries = []
    for path, data in (
        ("adapter_config.json", b'{"r": 8}'),
        ("adapter_model.safetensors", weights),
    ):
        blob = world.store.put_stream(io.BytesIO(data), max_bytes=1 << 20)
        entries.append(FileEntry(path=path, sha256=blob.sha256, size=blob.size))
    manifest = Manifest(
        adapter=adapter,
        revision=revision_digest(entries),
        files=tuple(entries),
        base_model_id="tiny",
        base_model_revision="b1",
        tokenizer_revision="tok",
        tokenizer_hash="sha256:" + "1" * 64,
        chat_template_hash="sha256:" + "2" * 64,
        quantization_profile="bf16",
        submitter="alice",
        trained_event_id="t",
        source_uri="file:///incoming/x",
    )
    world.store.materialize(manifest)
    return manifest, world.store.put_manifest(manifest)


async def commit(world: World, adapter: str, revision: str, *events: tuple[type, str]) -> None:
    for cls, environment in events:
        await world.registry.transition(lifecycle(cls, adapter, revision, environment))


async def rejected(world: World, weights: bytes, adapter: str = ADAPTER) -> Manifest:
    """A registered revision the validator rejected: it answers to every policy of its adapter."""
    manifest, digest = stored(world, adapter, weights)
    await world.registry.transition(
        lifecycle(RevisionRegistered, adapter, manifest.revision, manifest_digest=digest)
    )
    await commit(world, adapter, manifest.revision, (RevisionRejected, ""))
    return manifest


async def expired(world: World, weights: bytes) -> Manifest:
    manifest = await rejected(world, weights)
    await commit(world, ADAPTER, manifest.revision, (RevisionExpired, ""))
    return manifest


async def activated(world: World, weights: bytes) -> Manifest:
    manifest, digest = stored(world, ADAPTER, weights)
    await world.registry.transition(
        lifecycle(RevisionRegistered, ADAPTER, manifest.revision, manifest_digest=digest)
    )
    await commit(
        world,
        ADAPTER,
        manifest.revision,
        (RevisionValidated, ""),
        (RevisionEvaluated, "staging"),
        (RevisionApproved, "staging"),
        (RevisionActivated, "staging"),
    )
    return manifest


def blobs_present(world: World, manifest: Manifest) -> bool:
    return all(world.store.blob_path(f.sha256).exists() for f in manifest.files)


def cold_path(world: World, manifest: Manifest) -> Path:
    return world.cold.root / archive_key(manifest.adapter, manifest.revision)


# --- the sweep -------------------------------------------------------------------------


async def test_a_sweep_expires_archives_and_deletes_a_revision_the_policy_lets_go(
    world: World,
) -> None:
    manifest = await rejected(world, b"weights-1")
    world.clock.advance(days=8)
    report = await sweep(world.deps())

    key = (ADAPTER, manifest.revision)
    assert report.expired == [key] and report.finished == {key: State.DELETED}
    assert report.failed == {}
    assert world.types()[-3:] == WAY_OUT
    events = await world.registry.events(ADAPTER, manifest.revision)
    expiry, archived, deleted = events[-3:]
    assert isinstance(expiry, RevisionExpired) and expiry.policy
    assert isinstance(archived, ManifestArchived)
    assert archived.envelope.causation_id == expiry.envelope.event_id
    assert isinstance(deleted, WeightsDeleted)
    assert deleted.envelope.causation_id == archived.envelope.event_id
    assert (deleted.file_count, deleted.bytes_freed) == (2, sum(f.size for f in manifest.files))
    data = world.cold.read(archived.archive_uri)
    digest, revision = archived.archive_digest, manifest.revision
    assert verify_record(data, digest=digest, adapter=ADAPTER, revision=revision) == []
    assert not blobs_present(world, manifest)
    assert not world.store.revision_dir(manifest).exists()


async def test_a_second_sweep_changes_nothing(world: World) -> None:
    await rejected(world, b"weights-1")
    world.clock.advance(days=8)
    await sweep(world.deps())
    before = len(world.registry.outbox)
    report = await sweep(world.deps())
    assert len(world.registry.outbox) == before
    assert (report.expired, report.finished, report.failed) == ([], {}, {})


@pytest.mark.parametrize(
    ("days", "policies"),
    [(6, [STAGING]), (8, []), (8, [dataclasses.replace(STAGING, adapter=OTHER)])],
    ids=["younger than the policy's minimum age", "no policy", "only another adapter's policy"],
)
async def test_a_revision_no_policy_lets_go_is_kept(
    world: World, days: int, policies: list[RetentionPolicy]
) -> None:
    manifest = await rejected(world, b"weights-1")
    world.rules = InMemoryRetentionRules(policies)
    world.clock.advance(days=days)
    report = await sweep(world.deps())
    assert report.expired == [] and world.types() == ["RevisionRegistered", "RevisionRejected"]
    assert blobs_present(world, manifest)


async def test_a_revision_under_a_legal_hold_is_not_expired(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    world.rules.hold(ADAPTER, manifest.revision)
    world.clock.advance(days=8)
    report = await sweep(world.deps())
    assert report.expired == []
    assert await world.track(manifest.revision) is State.REJECTED
    assert blobs_present(world, manifest)


async def test_a_hold_placed_after_expiry_keeps_the_weights_until_it_is_released(
    world: World,
) -> None:
    manifest = await expired(world, b"weights-1")
    world.rules.hold(ADAPTER, manifest.revision)
    report = await sweep(world.deps())
    assert report.finished == {(ADAPTER, manifest.revision): State.ARCHIVED}
    assert world.types()[-1] == "ManifestArchived"  # the archive is written all the same
    assert blobs_present(world, manifest)

    world.rules.release(ADAPTER, manifest.revision)
    report = await sweep(world.deps())
    assert report.finished == {(ADAPTER, manifest.revision): State.DELETED}
    assert not blobs_present(world, manifest)


async def test_a_sweep_quarantines_weights_that_changed_on_disk_and_still_takes_them_out(
    world: World,
) -> None:
    """Once a dead letter retried every sweep: now the change is on the log, the archive
    keeps the manifest's hashes and says the weights no longer matched, and the way out
    ends."""
    broken = await expired(world, b"weights-1")
    fine = await expired(world, b"weights-2")
    weights = world.store.blob_path(broken.files[1].sha256)
    os.chmod(weights, 0o644)
    weights.write_bytes(b"weights-X")  # the stored bytes changed since ingest
    report = await sweep(world.deps())

    assert report.failed == {}
    assert report.finished == {
        (ADAPTER, broken.revision): State.DELETED,
        (ADAPTER, fine.revision): State.DELETED,
    }
    [quarantine] = await world.registry.events(
        ADAPTER, broken.revision, types=(RevisionQuarantined,)
    )
    assert isinstance(quarantine, RevisionQuarantined) and quarantine.detected_by == "archiver"
    [finding] = quarantine.findings
    assert finding.code == "artifact_changed" and finding.evidence["path"] == broken.files[1].path
    assert finding.evidence["found_sha256"] == hashlib.sha256(b"weights-X").hexdigest()
    [archived] = await world.registry.events(ADAPTER, broken.revision, types=(ManifestArchived,))
    assert isinstance(archived, ManifestArchived)
    body = parse_record(world.cold.read(archived.archive_uri))
    assert [q["detected_by"] for q in body["quarantines"]] == ["archiver"]


# --- expire ----------------------------------------------------------------------------


async def test_expire_commits_the_expiry_on_the_version_it_decided_on(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    decision = ExpiryDecision(
        adapter=ADAPTER, revision=manifest.revision, version=2, reason="policy", policy={"a": "b"}
    )
    assert await expire(world.deps(), decision) is True
    await expire(world.deps(), decision)  # the same decision again: the same event id
    assert world.types() == ["RevisionRegistered", "RevisionRejected", "RevisionExpired"]
    [expiry] = await world.registry.events(ADAPTER, manifest.revision, types=(RevisionExpired,))
    assert isinstance(expiry, RevisionExpired)
    assert (expiry.reason, dict(expiry.policy)) == ("policy", {"a": "b"})


async def test_expire_loses_to_a_writer_that_moved_the_revision_first(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    stale = ExpiryDecision(adapter=ADAPTER, revision=manifest.revision, version=1, reason="old")
    assert await expire(world.deps(), stale) is False
    assert await world.track(manifest.revision) is State.REJECTED


async def test_expire_refuses_a_revision_still_serving(world: World) -> None:
    manifest = await activated(world, b"weights-1")
    record = await world.registry.revision(ADAPTER, manifest.revision)
    assert record is not None
    decision = ExpiryDecision(
        adapter=ADAPTER, revision=manifest.revision, version=record.version, reason="policy"
    )
    assert await expire(world.deps(), decision) is False
    assert world.types()[-1] == "RevisionActivated"


# --- archive and delete_weights --------------------------------------------------------


async def record_of(world: World, revision: str) -> RevisionRecord:
    record = await world.registry.revision(ADAPTER, revision)
    assert record is not None
    return record


async def test_archive_writes_a_verified_record_and_commits_where_it_is(world: World) -> None:
    manifest = await expired(world, b"weights-1")
    await archive(world.deps(), await record_of(world, manifest.revision))
    assert await world.track(manifest.revision) is State.ARCHIVED
    [archived] = await world.registry.events(ADAPTER, types=(ManifestArchived,))
    assert isinstance(archived, ManifestArchived)
    assert archived.archive_uri == cold_path(world, manifest).as_uri()
    body = parse_record(world.cold.read(archived.archive_uri))
    assert body["revision"] == manifest.revision
    assert blobs_present(world, manifest)  # archiving deletes nothing


async def test_missing_weights_are_quarantined_before_the_archive_is_written(
    world: World,
) -> None:
    manifest = await expired(world, b"weights-1")
    world.store.blob_path(manifest.files[1].sha256).unlink()
    await archive(world.deps(), await record_of(world, manifest.revision))
    assert await world.track(manifest.revision) is State.ARCHIVED
    [quarantine] = await world.registry.events(ADAPTER, types=(RevisionQuarantined,))
    assert isinstance(quarantine, RevisionQuarantined)
    assert quarantine.findings[0].evidence["found_sha256"] == "missing"
    await archive(world.deps(), await record_of(world, manifest.revision))  # no second one
    assert len(await world.registry.events(ADAPTER, types=(RevisionQuarantined,))) == 1


async def archived_revision(world: World) -> Manifest:
    manifest = await expired(world, b"weights-1")
    await archive(world.deps(), await record_of(world, manifest.revision))
    return manifest


async def test_delete_weights_removes_the_weights_and_commits_what_it_freed(world: World) -> None:
    manifest = await archived_revision(world)
    await delete_weights(world.deps(), await record_of(world, manifest.revision))
    assert await world.track(manifest.revision) is State.DELETED
    assert world.types()[-1] == "WeightsDeleted" and not blobs_present(world, manifest)


@pytest.mark.parametrize(
    ("damage", "refusal"), [("removed", ColdStorageError), ("rewritten", ArchiveNotVerified)]
)
async def test_delete_weights_refuses_without_an_archive_that_verifies(
    world: World, damage: str, refusal: type[Exception]
) -> None:
    manifest = await archived_revision(world)
    path = cold_path(world, manifest)
    os.chmod(path, 0o644)
    if damage == "removed":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes().replace(b"alice", b"mallory"))
    with pytest.raises(refusal):
        await delete_weights(world.deps(), await record_of(world, manifest.revision))
    assert await world.track(manifest.revision) is State.ARCHIVED
    assert blobs_present(world, manifest)


async def test_delete_weights_keeps_held_weights_and_commits_nothing(world: World) -> None:
    manifest = await archived_revision(world)
    world.rules.hold(ADAPTER, manifest.revision)
    await delete_weights(world.deps(), await record_of(world, manifest.revision))
    assert world.types()[-1] == "ManifestArchived" and blobs_present(world, manifest)


# --- crash and resume ------------------------------------------------------------------


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_after_any_step_resumes_to_the_same_end(world: World, point: str) -> None:
    manifest = await rejected(world, b"weights-1")
    world.clock.advance(days=8)
    crash = CrashAt(point)
    with pytest.raises(SimulatedCrash):
        await sweep(world.deps(crash))
    assert crash.passed == list(CRASH_POINTS[: CRASH_POINTS.index(point) + 1])

    report = await sweep(world.deps())  # the restarted process's first sweep
    assert report.finished == {(ADAPTER, manifest.revision): State.DELETED}
    assert report.failed == {}
    assert world.types()[2:] == WAY_OUT  # each step committed once
    [deleted] = await world.registry.events(ADAPTER, types=(WeightsDeleted,))
    assert isinstance(deleted, WeightsDeleted)
    assert (deleted.file_count, deleted.bytes_freed) == (2, sum(f.size for f in manifest.files))
    assert not blobs_present(world, manifest)


# --- the lifecycle handlers ------------------------------------------------------------


async def test_an_expired_revision_is_archived_and_deleted_at_once(world: World) -> None:
    manifest = await expired(world, b"weights-1")
    [event] = await world.registry.events(ADAPTER, types=(RevisionExpired,))
    await handlers(world.deps())[RevisionExpired](event)
    assert world.types()[-3:] == WAY_OUT
    assert not blobs_present(world, manifest)


async def test_a_redelivered_expiry_changes_nothing(world: World) -> None:
    await expired(world, b"weights-1")
    [event] = await world.registry.events(ADAPTER, types=(RevisionExpired,))
    assert isinstance(event, RevisionExpired)
    await on_revision_expired(event, world.deps())
    before = list(world.registry.outbox)
    await on_revision_expired(event, world.deps())
    assert world.registry.outbox == before


async def test_an_expiry_whose_archive_cannot_be_verified_goes_back_for_a_retry(
    world: World,
) -> None:
    manifest = await expired(world, b"weights-1")
    [event] = await world.registry.events(ADAPTER, types=(RevisionExpired,))
    assert isinstance(event, RevisionExpired)
    world.cold.put(archive_key(ADAPTER, manifest.revision), b"someone else's bytes")
    with pytest.raises(ColdStorageError):
        await on_revision_expired(event, world.deps())
    assert await world.track(manifest.revision) is State.EXPIRED


async def superseded(world: World) -> tuple[Manifest, Manifest, RevisionSuperseded]:
    """`old`, superseded in staging a week later by `new`, which is active there now."""
    old = await activated(world, b"weights-old")
    world.clock.advance(days=8)
    new = await activated(world, b"weights-new")
    await commit(world, ADAPTER, old.revision, (RevisionSuperseded, "staging"))
    [event] = await world.registry.events(ADAPTER, types=(RevisionSuperseded,))
    assert isinstance(event, RevisionSuperseded)
    return old, new, event


async def test_a_supersession_sweeps_the_adapter_and_lets_an_older_superseded_revision_go(
    world: World,
) -> None:
    old, new, _ = await superseded(world)
    await activated(world, b"weights-newest")  # `new` becomes the rollback target, `old` no one's
    await commit(world, ADAPTER, new.revision, (RevisionSuperseded, "staging"))
    _, event = await world.registry.events(ADAPTER, types=(RevisionSuperseded,))
    await handlers(world.deps())[RevisionSuperseded](event)
    assert await world.track(old.revision) is State.DELETED
    assert not blobs_present(world, old)
    assert await world.track(new.revision) is State.VALIDATED  # kept to roll back to
    assert blobs_present(world, new)


async def test_a_supersession_keeps_the_revision_an_environment_can_roll_back_to(
    world: World,
) -> None:
    old, _, event = await superseded(world)
    assert (await world.registry.pointer(ADAPTER, "staging")).rollback_target == old.revision
    await on_revision_superseded(event, world.deps())
    assert await world.track(old.revision) is State.VALIDATED
    assert blobs_present(world, old)


async def test_a_supersession_sweeps_only_its_own_adapter(world: World) -> None:
    other = await rejected(world, b"weights-other", adapter=OTHER)
    *_, event = await superseded(world)
    await on_revision_superseded(event, world.deps())
    assert await world.track(other.revision, OTHER) is State.REJECTED
    assert blobs_present(world, other)


async def test_a_redelivered_supersession_changes_nothing(world: World) -> None:
    *_, event = await superseded(world)
    await on_revision_superseded(event, world.deps())
    before = list(world.registry.outbox)
    await on_revision_superseded(event, world.deps())
    assert world.registry.outbox == before


# --- the retention commands ------------------------------------------------------------


def command_header(
    adapter: str = ADAPTER, environment: str = "", reason: str = "case 42"
) -> CommandHeader:
    return header(
        "retention",
        command_id=str(uuid.uuid4()),
        adapter=adapter,
        environment=environment,
        reason=reason,
    )


def set_policy(keep: int, min_age_days: int, adapter: str = "") -> SetRetentionPolicy:
    return SetRetentionPolicy(
        header=command_header(adapter, "staging"), keep_superseded=keep, min_age_days=min_age_days
    )


def answer(
    world: World, command: SetRetentionPolicy | PlaceLegalHold | ReleaseLegalHold
) -> tuple[str, str]:
    found = world.rules.outcomes[command.header.command_id]
    return str(found["outcome"]), str(found["detail"])


async def test_a_retention_policy_command_sets_the_policy_the_next_sweep_applies(
    world: World,
) -> None:
    world.rules = InMemoryRetentionRules()
    manifest = await rejected(world, b"weights-1")
    world.clock.advance(days=2)
    command = set_policy(keep=0, min_age_days=1)
    await on_set_retention_policy(command, world.deps())

    assert await world.rules.policies() == [
        RetentionPolicy(environment="staging", adapter="", keep_superseded=0, min_age_days=1)
    ]
    outcome, detail = answer(world, command)
    assert outcome == "committed" and "keep 0 superseded" in detail
    await sweep(world.deps())
    assert await world.track(manifest.revision) is State.DELETED


async def test_a_redelivered_retention_policy_command_changes_nothing(world: World) -> None:
    command = set_policy(keep=3, min_age_days=30)
    await on_set_retention_policy(command, world.deps())
    later = RetentionPolicy(environment="staging", keep_superseded=1, min_age_days=1)
    await world.rules.save_policy(later, "bob")  # a newer command, answered since
    await on_set_retention_policy(command, world.deps())
    assert await world.rules.policies() == [later]


async def test_a_retention_policy_that_cannot_be_is_refused_and_the_refusal_recorded(
    world: World,
) -> None:
    command = set_policy(keep=-1, min_age_days=7)
    with pytest.raises(PermanentError, match="must not be negative"):
        await on_set_retention_policy(command, world.deps())
    assert answer(world, command)[0] == "refused"
    assert await world.rules.policies() == [STAGING]


async def test_a_legal_hold_keeps_a_revision_the_policy_would_let_go(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    command = PlaceLegalHold(header=command_header(), revision=manifest.revision)
    await on_place_legal_hold(command, world.deps())
    assert await world.rules.hold_reason(ADAPTER, manifest.revision) == "case 42"
    assert answer(world, command)[0] == "committed"
    world.clock.advance(days=8)
    assert (await sweep(world.deps())).expired == []
    assert blobs_present(world, manifest)


async def test_a_hold_on_an_expired_revision_says_its_weights_stay(world: World) -> None:
    manifest = await expired(world, b"weights-1")
    command = PlaceLegalHold(header=command_header(), revision=manifest.revision)
    await on_place_legal_hold(command, world.deps())
    assert "its weights stay until the hold is released" in answer(world, command)[1]
    await sweep(world.deps())
    assert await world.track(manifest.revision) is State.ARCHIVED and blobs_present(world, manifest)


async def test_a_redelivered_hold_command_changes_nothing(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    command = PlaceLegalHold(header=command_header(), revision=manifest.revision)
    await on_place_legal_hold(command, world.deps())
    world.rules.release(ADAPTER, manifest.revision)  # released since, by a later command
    await on_place_legal_hold(command, world.deps())
    assert await world.rules.hold_reason(ADAPTER, manifest.revision) is None


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        ("no reason", "needs a reason"),
        ("unknown revision", "not a registered revision"),
        ("already held", "already under a legal hold"),
        ("deleted", "already deleted"),
    ],
)
async def test_a_hold_that_cannot_be_placed_is_refused_and_the_refusal_recorded(
    world: World, case: str, refusal: str
) -> None:
    manifest = await rejected(world, b"weights-1")
    revision = "sha256:" + "9" * 64 if case == "unknown revision" else manifest.revision
    if case == "already held":
        world.rules.hold(ADAPTER, revision, "an earlier case")
    if case == "deleted":
        world.clock.advance(days=8)
        await sweep(world.deps())
    reason = "  " if case == "no reason" else "case 42"
    command = PlaceLegalHold(header=command_header(reason=reason), revision=revision)
    with pytest.raises(PermanentError, match=refusal):
        await on_place_legal_hold(command, world.deps())
    assert answer(world, command)[0] == "refused"
    expected = "an earlier case" if case == "already held" else None
    assert await world.rules.hold_reason(ADAPTER, revision) == expected


async def test_releasing_a_hold_lets_retention_apply_again(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    world.rules.hold(ADAPTER, manifest.revision)
    command = ReleaseLegalHold(header=command_header(), revision=manifest.revision)
    await on_release_legal_hold(command, world.deps())
    assert answer(world, command)[0] == "committed"
    world.clock.advance(days=8)
    await sweep(world.deps())
    assert await world.track(manifest.revision) is State.DELETED


async def test_a_redelivered_release_changes_nothing(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    world.rules.hold(ADAPTER, manifest.revision)
    command = ReleaseLegalHold(header=command_header(), revision=manifest.revision)
    await on_release_legal_hold(command, world.deps())
    world.rules.hold(ADAPTER, manifest.revision, "held again")  # by a later command
    await on_release_legal_hold(command, world.deps())
    assert await world.rules.hold_reason(ADAPTER, manifest.revision) == "held again"


async def test_releasing_a_revision_not_under_a_hold_is_refused(world: World) -> None:
    manifest = await rejected(world, b"weights-1")
    command = ReleaseLegalHold(header=command_header(), revision=manifest.revision)
    with pytest.raises(PermanentError, match="not under a legal hold"):
        await on_release_legal_hold(command, world.deps())
    assert answer(world, command)[0] == "refused"
