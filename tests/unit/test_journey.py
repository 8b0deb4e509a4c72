"""The whole journey in process: every service's real handlers on one in-memory registry.

A trained adapter is ingested, validated, evaluated against the revision serving, approved
by someone who did not submit it, rolled out; a second revision canaries under traffic and
replaces it; the operator rolls it back in one command; the rolled-back revision expires,
is archived to cold storage and its weights deleted. The same journey runs on real Kafka,
PostgreSQL and processes in tests/e2e; this one runs in well under a second and proves the
handlers and the declared flow agree (tests/inprocess.py refuses an undeclared commit).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.activator.canary import tick
from services.activator.handlers import handlers as activator_handlers
from services.activator.routing import lora_name
from services.approval.deciding import Decider, cast
from services.approval.decisions import Ballot, Choice
from services.approval.handlers import handlers as approval_handlers
from services.approval.projection import believer
from services.archiver.deps import ArchiverDeps
from services.archiver.handlers import handlers as archiver_handlers
from services.archiver.handlers import sweep
from services.gpu_evaluator.deps import EvaluatorDeps
from services.gpu_evaluator.handlers import handlers as evaluator_handlers
from services.ingest.adapters import LocalDirectorySource
from services.ingest.deps import IngestDeps
from services.ingest.handlers import handlers as ingest_handlers
from services.ingest.ports import Limits
from services.validator.deps import ValidatorDeps
from services.validator.handlers import handlers as validator_handlers
from shared.artifacts import LocalArtifactStore
from shared.coldstore import DirectoryColdStorage
from shared.contract import ServingContract
from shared.events import Actor, BaseModelRef, CommandHeader, RevisionRegistered, RollbackRevision
from shared.lifecycle import State
from shared.registry.memory import InMemoryCatalogue, InMemoryRegistry
from shared.registry.principals import Principal, Role
from shared.retention import RetentionPolicy
from shared.trainer_client import describe_submission
from tests.corpus.adapters import (
    environment_for,
    tiny_base_spec,
    tiny_tokenizer_files,
    write_adapter,
)
from tests.factories import TEST_DECISION_KEYS, TEST_SIGNER, lifecycle
from tests.fakes.activator import (
    FakeReplicas,
    InMemoryActivatorStore,
    activator_deps,
    held_roles,
)
from tests.fakes.approval import InMemoryApprovalStore, persons_of
from tests.fakes.archiver import InMemoryRetentionRules
from tests.fakes.evaluator import RIGHT, WRONG, FakeBackends, ScriptedBackend, write_suite
from tests.inprocess import InProcessFlow, UndeclaredCommit

ADAPTER = "support-bot"
ENV = "staging"
REPLICAS = ("http://replica-a", "http://replica-b")
QUICK_ANALYSIS = {"min_samples": 20, "step_interval_s": 0}


@dataclass
class Journey:
    root: Path
    flow: InProcessFlow
    registry: InMemoryRegistry
    replicas: FakeReplicas
    rules: InMemoryRetentionRules
    decider: Decider
    archiver: ArchiverDeps
    activator: Any
    backend: ScriptedBackend
    now: list[datetime]

    async def submit(self, name: str, weights_seed: int) -> str:
        """Write a trained adapter under the allowed root and submit it; its revision."""
        base = tiny_base_spec()
        folder = self.root / "incoming" / name
        shutil.rmtree(folder, ignore_errors=True)
        write_adapter(folder, base, config={"weights_seed": weights_seed})
        (folder / "recipe.json").write_text(
            json.dumps({"seed": weights_seed, "dataset_ids": ["tickets-q3"]})
        )
        (folder / "data_scope.json").write_text(
            json.dumps(
                {
                    "corpora": ["tickets"],
                    "time_window_start": "2026-07-01",
                    "time_window_end": "2026-09-30",
                    "filtering_rules": ["pii-scrubbed"],
                }
            )
        )
        tokenizer = self.root / "tokenizer"
        tokenizer.mkdir(exist_ok=True)
        for file, data in tiny_tokenizer_files().items():
            (tokenizer / file).write_bytes(data)
        event = describe_submission(
            folder,
            adapter=ADAPTER,
            base=BaseModelRef(model_id=base.model_id, revision=base.revision),
            submitter="alice",
            tokenizer_revision=base.tokenizer_revision,
            tokenizer_folder=tokenizer,
            target_environments=[ENV],
        )
        before = len(self.registry.outbox)
        await self.flow.publish(event)
        registered = await self.registry.events(ADAPTER)
        assert len(self.registry.outbox) > before, "ingest committed nothing"
        return registered[-1].envelope.revision if registered else ""

    async def approve(self, revision: str, approver: str = "bob") -> None:
        """An approver who did not submit casts the deciding ballot, as the HTTP API would."""
        evaluation = await self.decider.readmodel.evaluation(ADAPTER, revision, ENV)
        record = await self.registry.revision(ADAPTER, revision)
        assert evaluation is not None and record is not None and record.manifest_digest
        ballot = Ballot(
            principal=approver,
            choice=Choice.APPROVE,
            manifest_digest=record.manifest_digest,
            report_digest=evaluation.report_digest,
        )
        principal = Principal(approver, Role.APPROVER)
        await self.flow.after(cast(self.decider, principal, ADAPTER, revision, ENV, ballot))

    async def serve(self, revision: str, requests: int) -> None:
        for replica in self.replicas:
            replica.serve(lora_name(ADAPTER, revision), requests)

    async def track(self, revision: str) -> State | None:
        record = await self.registry.revision(ADAPTER, revision)
        assert record is not None
        return record.status.track(ENV)

    async def types(self, revision: str) -> list[str]:
        return [type(e).__name__ for e in await self.registry.events(ADAPTER, revision)]


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    base = tiny_base_spec()
    environment = environment_for(base, name=ENV, canary_steps=(20, 50, 100))
    registry = InMemoryRegistry()
    catalogue = InMemoryCatalogue([base], [environment])
    store = LocalArtifactStore(tmp_path / "store")
    now = [datetime.now(UTC)]
    clock = lambda: now[0]  # noqa: E731 - the archiver's days pass when the test says so

    rules = InMemoryRetentionRules(
        [RetentionPolicy(environment=ENV, keep_superseded=0, min_age_days=0)]
    )
    approvals = InMemoryApprovalStore(registry)
    replicas = FakeReplicas(REPLICAS)
    for replica in replicas:
        replica.contract = ServingContract.of_environment(environment)
    activator_store = InMemoryActivatorStore(registry, {ENV: REPLICAS}, {ENV: QUICK_ANALYSIS})
    backend = ScriptedBackend({None: WRONG}, default=RIGHT)  # every adapter learned the facts
    write_suite(tmp_path / "suites")
    (tmp_path / "incoming").mkdir()

    archiver: ArchiverDeps | None = None
    activator: Any = None

    def wire_archiver(reg: Any) -> Any:
        nonlocal archiver
        archiver = ArchiverDeps(
            registry=reg,
            rules=rules,
            store=store,
            cold=DirectoryColdStorage(tmp_path / "cold"),
            clock=clock,
        )
        return archiver_handlers(archiver)

    def wire_activator(reg: Any) -> Any:
        nonlocal activator
        activator = activator_deps(
            reg,
            catalogue,
            activator_store,
            replicas,
            store,
            principals={"oncall-olga": {"operator"}},
        )
        return activator_handlers(activator)

    flow = InProcessFlow.wire(
        registry,
        {
            "ingest": lambda reg: ingest_handlers(
                IngestDeps(
                    registry=reg,
                    store=store,
                    source=LocalDirectorySource([tmp_path / "incoming"]),
                    limits=Limits(),
                    roles_of=held_roles({"alice": {"trainer"}}),
                )
            ),
            "validator": lambda reg: validator_handlers(
                ValidatorDeps(registry=reg, catalogue=catalogue, store=store)
            ),
            "gpu_evaluator": lambda reg: evaluator_handlers(
                EvaluatorDeps(
                    registry=reg,
                    catalogue=catalogue,
                    store=store,
                    backends=FakeBackends(backend),
                    suites_root=tmp_path / "suites",
                )
            ),
            "approval": lambda reg: approval_handlers(
                approvals, believer(reg, lambda: TEST_DECISION_KEYS)
            ),
            "activator": wire_activator,
            "archiver": wire_archiver,
        },
    )
    decider = Decider(
        registry=flow.guarded("approval"),
        readmodel=approvals,
        catalogue=catalogue,
        signer=TEST_SIGNER,  # the key the activator trusts (tests.factories)
        persons=persons_of(),
    )
    assert archiver is not None
    return Journey(
        tmp_path, flow, registry, replicas, rules, decider, archiver, activator, backend, now
    )


async def test_a_revision_goes_from_training_to_deleted_weights_through_every_service(
    journey: Journey,
) -> None:
    first = await journey.submit("first", weights_seed=1)
    assert await journey.types(first) == [
        "RevisionRegistered",
        "RevisionValidated",
        "RevisionEvaluated",
    ]
    await journey.approve(first)
    # Nothing serves yet, so the first canary step has no stable revision to compare with:
    await journey.serve(first, 30)
    await journey.flow.after(tick(journey.activator))
    await journey.flow.after(tick(journey.activator))
    assert (await journey.registry.pointer(ADAPTER, ENV)).active == first
    assert await journey.track(first) is State.ACTIVE

    second = await journey.submit("second", weights_seed=2)
    assert second != first
    await journey.approve(second)
    assert (await journey.registry.pointer(ADAPTER, ENV)).canary == second
    await journey.serve(first, 200)
    await journey.serve(second, 30)
    await journey.flow.after(tick(journey.activator))  # healthy: 20% -> 50%
    assert (await journey.registry.pointer(ADAPTER, ENV)).canary_percent == 50
    await journey.serve(second, 30)
    await journey.flow.after(tick(journey.activator))  # healthy again: activated
    pointer = await journey.registry.pointer(ADAPTER, ENV)
    assert (pointer.active, pointer.rollback_target) == (second, first)
    assert await journey.track(first) is State.SUPERSEDED

    rollback = RollbackRevision(
        header=CommandHeader(
            command_id="rollback-1",
            adapter=ADAPTER,
            environment=ENV,
            actor=Actor(principal="oncall-olga", role="operator"),
            issued_at=datetime.now(UTC),
            correlation_id="rollback-1",
            reason="support tickets report wrong answers",
        ),
    )
    await journey.flow.publish(rollback)
    assert (await journey.registry.pointer(ADAPTER, ENV)).active == first
    assert await journey.track(second) is State.ROLLED_BACK

    journey.now[0] += timedelta(days=1)
    await journey.flow.after(sweep(journey.archiver))
    assert await journey.types(second) == [
        "RevisionRegistered",
        "RevisionValidated",
        "RevisionEvaluated",
        "RevisionApproved",
        "CanaryStarted",
        "CanaryExpanded",
        "RevisionActivated",
        "RevisionRolledBack",
        "RevisionExpired",
        "ManifestArchived",
        "WeightsDeleted",
    ]
    revision_record = await journey.registry.revision(ADAPTER, second)
    assert revision_record is not None and revision_record.status.revision_track is State.DELETED
    assert await journey.track(first) is State.ACTIVE, "the serving revision is kept"
    services = {service for service, _ in journey.flow.log}
    assert services == {"ingest", "validator", "gpu_evaluator", "approval", "activator", "archiver"}


async def test_the_runner_refuses_a_commit_the_services_flow_does_not_declare(
    journey: Journey,
) -> None:
    validator_view = journey.flow.guarded("validator")
    with pytest.raises(UndeclaredCommit, match="validator committed"):
        await validator_view.transition(lifecycle(RevisionRegistered, ADAPTER, "r1"))
    assert journey.registry.outbox == [], "nothing was committed"


async def test_a_regressed_second_revision_is_refused_and_the_first_keeps_serving(
    journey: Journey,
) -> None:
    first = await journey.submit("first", weights_seed=1)
    await journey.approve(first)
    await journey.flow.after(tick(journey.activator))
    await journey.flow.after(tick(journey.activator))
    journey.backend.default = WRONG  # the next revision learned nothing: answers as the base
    second = await journey.submit("second", weights_seed=2)
    assert await journey.types(second) == [
        "RevisionRegistered",
        "RevisionValidated",
        "RevisionEvaluationFailed",
    ]
    assert (await journey.registry.pointer(ADAPTER, ENV)).active == first
