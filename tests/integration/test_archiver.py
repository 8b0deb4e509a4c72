"""Retention against the real registry: what stays addressable, what is archived and deleted,
legal holds, and the refusal to roll back to an archived revision.

The sweep, pipeline and retention commands run in-process on a private database (with
the archiver's own migrations) and artifact store; `adapterctl retention` against the
archiver as a process, on a stack of its own, is the last test here; the
archiver as its own process is tested in test_archiver_process.py, races in
test_archiver_race.py, and what must stop a deletion in test_archiver_safety.py."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.processes import wait_http
from services.archiver.commands import on_place_legal_hold, on_release_legal_hold
from services.archiver.deps import ArchiverDeps
from services.archiver.handlers import sweep
from services.archiver.migrations import MIGRATIONS as ARCHIVER_MIGRATIONS
from services.archiver.pipeline import complete, expire
from services.archiver.store import PostgresRetentionRules
from shared.artifacts import LocalArtifactStore
from shared.codec import Codec
from shared.coldstore import ColdStorage, DirectoryColdStorage
from shared.coldstore.record import parse_record, record_files, verify_record
from shared.coldstore.weights import check_weights
from shared.events import (
    Actor,
    CommandHeader,
    ManifestArchived,
    PlaceLegalHold,
    ReleaseLegalHold,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionExpired,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
    WeightsDeleted,
)
from shared.lifecycle import State
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.registry.migrate import migrate_pool
from shared.registry.store import PostgresRegistry, Step
from shared.retention import (
    ExpiryDecision,
    RetentionPolicy,
    check_rollback_target,
)
from tests.conftest import Infra
from tests.factories import lifecycle
from tests.stack import STACK_ADMIN, Stack


@dataclass
class World:
    """A private registry, artifact store and cold storage, and the revisions put into them."""

    stack: Stack
    registry: PostgresRegistry
    store: LocalArtifactStore
    cold: ColdStorage
    contents: dict[str, dict[str, bytes]] = field(default_factory=dict)  # revision -> files

    def deps(self, *, days_later: float = 0, cold: ColdStorage | None = None) -> ArchiverDeps:
        later = timedelta(days=days_later)
        return ArchiverDeps(
            registry=self.registry,
            rules=PostgresRetentionRules(self.registry.pool),
            store=self.store,
            cold=cold or self.cold,
            clock=lambda: datetime.now(UTC) + later,
        )

    async def add(self, adapter: str, *, rejected: bool = False) -> str:
        """Store a revision's files and manifest, register it, and validate (or reject) it."""
        n = len(self.contents)
        contents = {
            "adapter_config.json": f'{{"r": 8, "n": {n}}}'.encode(),
            "adapter_model.safetensors": hashlib.sha256(f"{adapter}{n}".encode()).digest() * 64,
        }
        files = []
        for path, data in contents.items():
            entry = self.store.put_stream(io.BytesIO(data), max_bytes=1 << 20)
            files.append(FileEntry(path=path, sha256=entry.sha256, size=entry.size))
        manifest = Manifest(
            adapter=adapter,
            revision=revision_digest(files),
            files=tuple(files),
            base_model_id="tiny-llama",
            base_model_revision="sha256:" + "b" * 64,
            tokenizer_revision="tok-1",
            tokenizer_hash="sha256:" + "1" * 64,
            chat_template_hash="sha256:" + "2" * 64,
            quantization_profile="bf16",
            submitter="trainer-alice",
            trained_event_id=str(uuid.uuid4()),
            source_uri=f"file:///incoming/{adapter}",
        )
        self.store.put_manifest(manifest)
        self.store.materialize(manifest)
        revision = manifest.revision
        self.contents[revision] = contents
        verdict = RevisionRejected if rejected else RevisionValidated
        await self.commit(
            lifecycle(RevisionRegistered, adapter, revision, manifest_digest=manifest.digest),
            lifecycle(verdict, adapter, revision),
        )
        return revision

    async def commit(self, *events: Any) -> None:
        await self.registry.commit([Step(e) for e in events])

    async def activate(self, adapter: str, revision: str, env: str) -> None:
        """Evaluate, approve and activate `revision`, superseding the active one."""
        before = (await self.registry.pointer(adapter, env)).active
        await self.commit(
            lifecycle(RevisionEvaluated, adapter, revision, env),
            lifecycle(RevisionApproved, adapter, revision, env),
        )
        events = [lifecycle(RevisionActivated, adapter, revision, env, previous_revision=before)]
        if before:
            events.append(
                lifecycle(RevisionSuperseded, adapter, before, env, superseded_by=revision)
            )
        await self.commit(*events)

    async def rollback_to(self, adapter: str, target: str, env: str) -> None:
        """What the activator does: check the target, then one compare-and-set commit."""
        await check_rollback_target(self.registry, adapter, target, env)
        active = (await self.registry.pointer(adapter, env)).active
        assert active is not None
        current = await self.registry.revision(adapter, active)
        wanted = await self.registry.revision(adapter, target)
        assert current is not None and wanted is not None
        await self.registry.commit(
            [
                Step(
                    lifecycle(RevisionRolledBack, adapter, active, env, restored_revision=target),
                    current.version,
                ),
                Step(lifecycle(RevisionActivated, adapter, target, env), wanted.version),
            ]
        )

    async def set_policy(self, env: str, keep: int, min_age_days: int = 0) -> None:
        policy = RetentionPolicy(environment=env, keep_superseded=keep, min_age_days=min_age_days)
        await PostgresRetentionRules(self.registry.pool).save_policy(policy, "test")

    async def hold(self, adapter: str, revision: str, reason: str) -> None:
        """`adapterctl retention hold`, as the archiver carries it out."""
        header = command_header(adapter, reason)
        await on_place_legal_hold(PlaceLegalHold(header=header, revision=revision), self.deps())

    async def release(self, adapter: str, revision: str) -> None:
        header = command_header(adapter, "released")
        await on_release_legal_hold(ReleaseLegalHold(header=header, revision=revision), self.deps())

    async def state(self, adapter: str, revision: str) -> State | None:
        record = await self.registry.revision(adapter, revision)
        return record.status.revision_track if record else None

    def weights_present(self, adapter: str, revision: str) -> bool:
        folder = self.store.root / "revisions" / adapter / revision.removeprefix("sha256:")
        blobs = [
            self.store.blob_path(hashlib.sha256(d).hexdigest())
            for d in self.contents[revision].values()
        ]
        return folder.is_dir() and all(b.exists() for b in blobs)

    def weights_gone(self, adapter: str, revision: str) -> bool:
        folder = self.store.root / "revisions" / adapter / revision.removeprefix("sha256:")
        blobs = [
            self.store.blob_path(hashlib.sha256(d).hexdigest())
            for d in self.contents[revision].values()
        ]
        return not folder.exists() and not any(b.exists() for b in blobs)

    async def archive_of(self, adapter: str, revision: str) -> dict[str, Any]:
        """The revision's archive record, read back through its ManifestArchived and verified."""
        found = await self.registry.events(adapter, revision, types=(ManifestArchived,))
        archived = found[-1] if found else None
        assert isinstance(archived, ManifestArchived), f"{adapter}@{revision} has none"
        data = self.cold.read(archived.archive_uri)
        problems = verify_record(
            data, digest=archived.archive_digest, adapter=adapter, revision=revision
        )
        assert problems == [], problems
        return parse_record(data)

    async def event_types(self, adapter: str, revision: str) -> list[str]:
        events = await self.registry.events(adapter, revision)
        return [type(e).__name__ for e in events]


def command_header(adapter: str, reason: str) -> CommandHeader:
    return CommandHeader(
        command_id=str(uuid.uuid4()),
        adapter=adapter,
        environment="",
        actor=Actor(principal="lee", role="operator"),
        issued_at=datetime.now(UTC),
        correlation_id=str(uuid.uuid4()),
        reason=reason,
    )


def decide_one(adapter: str, revision: str, version: int) -> ExpiryDecision:
    """An expiry decided elsewhere (an earlier sweep, another archiver) on `version`."""
    return ExpiryDecision(adapter=adapter, revision=revision, version=version, reason="test")


async def make_world(stack: Stack, root: Path) -> World:
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env(), max_size=10)
    await migrate_pool(registry.pool, ARCHIVER_MIGRATIONS)
    return World(
        stack, registry, LocalArtifactStore(stack.artifacts), DirectoryColdStorage(root / "cold")
    )


@pytest.fixture(scope="module")
async def world(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    stack = Stack(infra, tmp_path_factory.mktemp("archiver"))
    await stack.create()
    world = await make_world(stack, stack.root)
    yield world
    await world.registry.close()


async def test_a_sequence_of_activations_leaves_exactly_the_policys_revisions_addressable(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("summarizer"), unique("prod")
    await world.set_policy(env, keep=2)
    revisions = [await world.add(adapter) for _ in range(6)]
    for revision in revisions:
        await world.activate(adapter, revision, env)

    report = await sweep(world.deps(), adapter)

    expected_gone, kept = revisions[:3], revisions[3:]
    assert sorted(report.expired) == sorted((adapter, r) for r in expected_gone)
    assert report.failed == {}
    pointer = await world.registry.pointer(adapter, env)
    assert (pointer.active, pointer.rollback_target) == (revisions[5], revisions[4])
    for revision in kept:
        assert await world.state(adapter, revision) is State.VALIDATED
        assert world.weights_present(adapter, revision)
    for revision in expected_gone:
        assert await world.state(adapter, revision) is State.DELETED
        assert world.weights_gone(adapter, revision)
        assert (await world.event_types(adapter, revision))[-3:] == [
            "RevisionExpired",
            "ManifestArchived",
            "WeightsDeleted",
        ]
        record = await world.archive_of(adapter, revision)
        folder = world.stack.root / "restored" / revision
        for name, data in world.contents[revision].items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        assert check_weights(record_files(record), folder).ok
        [evaluation] = record["evaluations"]
        [decision] = record["decisions"]
        assert evaluation["environment"] == decision["environment"] == env
        assert decision["signature"] and decision["key_id"]  # the signed decision, kept


async def test_each_archive_names_its_revisions_chain_head_and_the_deletion_its_real_totals(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("heads"), unique("prod")
    await world.set_policy(env, keep=0)
    old, new = await world.add(adapter), await world.add(adapter)
    await world.activate(adapter, old, env)
    await world.activate(adapter, new, env)
    await world.activate(adapter, await world.add(adapter), env)  # `old` is no longer named

    await sweep(world.deps(), adapter)

    events = await world.registry.events(adapter, old)
    expired = next(e for e in events if isinstance(e, RevisionExpired))
    archived = next(e for e in events if isinstance(e, ManifestArchived))
    deleted = next(e for e in events if isinstance(e, WeightsDeleted))
    record = await world.archive_of(adapter, old)
    assert record["chain_head"] == {
        "seq": expired.envelope.seq,
        "hash": expired.envelope.hash,
        "event_id": expired.envelope.event_id,
    }
    assert archived.envelope.causation_id == expired.envelope.event_id
    assert deleted.envelope.correlation_id == expired.envelope.event_id
    sizes = [len(d) for d in world.contents[old].values()]
    assert (deleted.file_count, deleted.bytes_freed) == (len(sizes), sum(sizes))


async def test_nothing_expires_before_the_minimum_age_and_a_second_sweep_changes_nothing(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("young"), unique("prod")
    await world.set_policy(env, keep=0, min_age_days=7)
    first, second, third = [await world.add(adapter) for _ in range(3)]
    for revision in (first, second, third):
        await world.activate(adapter, revision, env)

    assert (await sweep(world.deps(days_later=6), adapter)).expired == []
    assert await world.state(adapter, first) is State.VALIDATED
    assert (await sweep(world.deps(days_later=8), adapter)).expired == [(adapter, first)]
    rows = await world.registry.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE adapter = $1", adapter
    )
    again = await sweep(world.deps(days_later=8), adapter)
    assert again.expired == [] and again.finished == {}
    assert (
        await world.registry.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE adapter = $1", adapter
        )
        == rows
    )


async def test_a_rejected_revision_expires_and_its_archive_keeps_its_manifest(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("rejected"), unique("prod")
    await world.set_policy(env, keep=0)
    revision = await world.add(adapter, rejected=True)
    # With no environment track it answers to every environment's policy (others' here too),
    # so it waits for the largest minimum age among them.
    await sweep(world.deps(days_later=365), adapter)
    assert await world.state(adapter, revision) is State.DELETED
    record = await world.archive_of(adapter, revision)
    assert record["manifest"]["revision"] == revision and record["evaluations"] == []


async def test_a_revision_under_legal_hold_is_never_expired_until_the_hold_is_released(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("held"), unique("prod")
    await world.set_policy(env, keep=0)
    held, middle, active = [await world.add(adapter) for _ in range(3)]
    for revision in (held, middle, active):
        await world.activate(adapter, revision, env)
    await world.hold(adapter, held, "litigation 4711")

    for days in (0, 400, 4000):
        await sweep(world.deps(days_later=days), adapter)
        assert await world.state(adapter, held) is State.VALIDATED
        assert world.weights_present(adapter, held)
    assert await world.state(adapter, middle) is State.VALIDATED  # the rollback target

    await world.release(adapter, held)
    await sweep(world.deps(), adapter)
    assert await world.state(adapter, held) is State.DELETED


async def test_a_hold_placed_after_the_expiry_keeps_the_weights_until_it_is_released(
    world: World, unique: Callable[[str], str]
) -> None:
    adapter, env = unique("late-hold"), unique("prod")
    await world.set_policy(env, keep=0)
    revision = await world.add(adapter)
    record = await world.registry.revision(adapter, revision)
    assert record is not None
    facts_decision = decide_one(adapter, revision, record.version)
    assert await expire(world.deps(), facts_decision)
    await world.hold(adapter, revision, "audit")

    assert await complete(world.deps(), adapter, revision) is State.ARCHIVED
    assert world.weights_present(adapter, revision)
    await world.archive_of(adapter, revision)  # the archive itself was written and verified

    await world.release(adapter, revision)
    assert await complete(world.deps(), adapter, revision) is State.DELETED
    assert world.weights_gone(adapter, revision)


@pytest.fixture(scope="module")
async def running(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A stack of its own with the archiver running (its read API on the stack's port), so
    its sweeps never meet the in-process ones above."""
    stack = Stack(infra, tmp_path_factory.mktemp("archiver-ctl"))
    await stack.create()
    world = await make_world(stack, stack.root)
    stack.start("archiver", COLD_STORAGE_URL=str(stack.root / "cold"))
    try:
        await asyncio.to_thread(wait_http, stack.env()["ARCHIVER_URL"] + "/healthz")
        yield world
    finally:
        stack.stop()
        await world.registry.close()


async def test_adapterctl_manages_policies_and_holds_and_says_why_it_refuses(
    running: World, unique: Callable[[str], str]
) -> None:
    world = running
    adapter, env = unique("ctl"), unique("prod")
    ctl = world.stack.adapterctl
    ctl("retention", "set", "--environment", env, "--keep-superseded", "2", "--min-age-days", "9")
    ctl("retention", "set", "--environment", env, "--keep-superseded", "3", "--min-age-days", "30")
    ctl("retention", "set", "--environment", env, "--adapter", adapter,
        "--keep-superseded", "5", "--min-age-days", "90")  # fmt: skip
    revision = await world.add(adapter)
    ctl("retention", "hold", revision, "--adapter", adapter, "--reason", "case 17")

    shown = ctl("retention", "show", "--environment", env, "--json")
    policies = json.loads(shown.stdout)["policies"]
    assert {(p["adapter"], p["keep_superseded"], p["min_age_days"]) for p in policies} == {
        ("", 3, 30),
        (adapter, 5, 90),
    }
    [hold] = [h for h in json.loads(shown.stdout)["holds"] if h["adapter"] == adapter]
    # Placed by the token's principal: no name the caller types is recorded.
    assert (hold["revision"], hold["reason"], hold["placed_by"]) == (
        revision,
        "case 17",
        STACK_ADMIN,
    )

    again = ctl("retention", "hold", revision, "--adapter", adapter, "--reason", "x", check=False)
    assert again.returncode == 1 and "already under a legal hold" in again.stderr
    unknown = ctl("retention", "hold", "sha256:nope", "--adapter", adapter, "--reason", "x",
                  check=False)  # fmt: skip
    assert unknown.returncode == 1 and "no revision of" in unknown.stderr
    assert "starts with 'sha256:nope'" in unknown.stderr
    assert f"adapterctl history {adapter}" in unknown.stderr, "and where to see the revisions"
    ctl("retention", "release", revision, "--adapter", adapter, "--reason", "case closed")
    twice = ctl("retention", "release", revision, "--adapter", adapter, check=False)
    assert twice.returncode == 1 and "is not under a legal hold" in twice.stderr
    assert json.loads(ctl("retention", "show", "--json").stdout)["holds"] == []
    # In the archiver's own table: who released it and why (the history is kept).
    released = await world.registry.pool.fetchrow(
        "SELECT released_by, release_reason FROM legal_holds WHERE adapter = $1", adapter
    )
    assert tuple(released) == (STACK_ADMIN, "case closed")
    negative = ctl("retention", "set", "--environment", env, "--keep-superseded", "-1",
                   "--min-age-days", "0", check=False)  # fmt: skip
    assert negative.returncode == 2 and "must not be negative" in negative.stderr


async def test_an_insider_without_an_admins_token_can_neither_release_a_hold_nor_loosen_retention(
    running: World, unique: Callable[[str], str]
) -> None:
    """Releasing a hold or setting retention to nothing would let the archiver delete weights:
    the archiver does it only for an admin's token, whatever the request says."""
    world = running
    adapter, env = unique("held"), unique("prod")
    revision = await world.add(adapter)
    world.stack.adapterctl("retention", "hold", revision, "--adapter", adapter, "--reason", "c9")
    base = world.stack.env()["ARCHIVER_URL"]
    release = {"adapter": adapter, "revision": revision, "reason": "x", "principal": "admin"}
    loosen = {"environment": env, "keep_superseded": 0, "min_age_days": 0}
    operator = world.stack.adapterctl(
        "principal", "add", unique("olga"), "--role", "operator", "--json"
    )
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer apt_forged"}, 401),
        ({"Authorization": f"Bearer {json.loads(operator.stdout)['token']}"}, 403),
    ):
        answer = httpx.post(f"{base}/holds/release", json=release, headers=headers, timeout=10)
        assert answer.status_code == status, answer.text
        answer = httpx.put(f"{base}/retention", json=loosen, headers=headers, timeout=10)
        assert answer.status_code == status, answer.text
    shown = json.loads(world.stack.adapterctl("retention", "show", "--json").stdout)
    assert [h["revision"] for h in shown["holds"] if h["adapter"] == adapter] == [revision]
    assert not [p for p in shown["policies"] if p["environment"] == env]
