"""The validator's handler against the in-memory registry: a good revision is validated, a
bad one rejected with its findings, a redelivery changes nothing, and what it cannot read
yet is retried rather than judged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.validator.deps import ValidatorDeps
from services.validator.handlers import CONSUMER, handlers, on_revision_registered
from shared.events import RevisionRegistered, RevisionRejected, RevisionValidated
from shared.lifecycle import LifecycleEvent, State
from shared.registry.memory import InMemoryRegistry
from shared.registry.port import ConcurrentTransition, RevisionRecord
from tests.corpus.adapters import Scenario, stage
from tests.corpus.bad_cases import BAD_CASES, BadCase
from tests.factories import lifecycle
from tests.fakes.validator import catalogue_for, register_staged

# One case per kind of defect: bytes in the store, file format, tensors, catalogue.
CHOSEN = ("byte_changed_in_store_after_registration", "pickle_renamed_safetensors",
          "rank_above_environment_max", "base_model_not_in_catalogue")  # fmt: skip


def deps_for(scenario: Scenario) -> ValidatorDeps:
    return ValidatorDeps(
        registry=InMemoryRegistry(), catalogue=catalogue_for(scenario), store=scenario.store
    )


def committed(deps: ValidatorDeps) -> list[str]:
    registry = deps.registry
    assert isinstance(registry, InMemoryRegistry)
    return [entry.event_type.rsplit(".", 1)[-1] for entry in registry.outbox]


async def test_a_structurally_good_revision_is_validated_for_its_target_environments(
    tmp_path: Path,
) -> None:
    scenario = stage(tmp_path)
    deps = deps_for(scenario)
    registered = await register_staged(deps.registry, scenario)
    await handlers(deps)[RevisionRegistered](registered)

    assert committed(deps) == ["RevisionRegistered", "RevisionValidated"]
    adapter, revision = scenario.manifest.adapter, scenario.manifest.revision
    _, validated = await deps.registry.events(adapter, revision)
    assert isinstance(validated, RevisionValidated)
    assert validated.checked_environments == ["staging"]
    assert [f for f in validated.findings if f.severity == "error"] == []
    assert validated.envelope.causation_id == registered.envelope.event_id
    assert validated.envelope.correlation_id == registered.envelope.correlation_id
    assert validated.envelope.actor.principal == "validator"
    record = await deps.registry.revision(adapter, revision)
    assert record is not None and record.version == 2
    assert record.status.revision_track is State.VALIDATED
    assert await deps.registry.handled(CONSUMER, registered.envelope.event_id)


async def test_a_redelivered_registration_is_validated_once(tmp_path: Path) -> None:
    scenario = stage(tmp_path)
    deps = deps_for(scenario)
    registered = await register_staged(deps.registry, scenario)
    await on_revision_registered(registered, deps)
    await on_revision_registered(registered, deps)
    assert committed(deps) == ["RevisionRegistered", "RevisionValidated"]


@pytest.mark.parametrize("case", [c for c in BAD_CASES if c.name in CHOSEN], ids=lambda c: c.name)
async def test_a_bad_revision_is_rejected_with_the_finding_that_names_its_defect(
    tmp_path: Path, case: BadCase
) -> None:
    scenario = case.build(tmp_path)
    deps = deps_for(scenario)
    registered = await register_staged(deps.registry, scenario)
    await on_revision_registered(registered, deps)

    assert committed(deps) == ["RevisionRegistered", "RevisionRejected"]
    _, rejected = await deps.registry.events(scenario.manifest.adapter)
    assert isinstance(rejected, RevisionRejected)
    errors = [f for f in rejected.findings if f.severity == "error"]
    assert case.expected_code in [f.code for f in errors], rejected.findings
    assert all(f.message for f in errors)
    record = await deps.registry.revision(scenario.manifest.adapter, scenario.manifest.revision)
    assert record is not None and record.status.revision_track is State.REJECTED


def test_the_chosen_bad_cases_exist_in_the_corpus() -> None:
    assert {c.name for c in BAD_CASES} >= set(CHOSEN)


async def test_a_manifest_the_store_cannot_read_rejects_the_revision(tmp_path: Path) -> None:
    scenario = stage(tmp_path)
    deps = deps_for(scenario)
    registered = await register_staged(
        deps.registry, scenario, manifest_digest="sha256:" + "0" * 64
    )
    await on_revision_registered(registered, deps)
    _, rejected = await deps.registry.events(scenario.manifest.adapter)
    assert isinstance(rejected, RevisionRejected)
    assert [f.code for f in rejected.findings] == ["manifest_unreadable"]


async def test_a_manifest_naming_another_revision_rejects_the_registered_one(
    tmp_path: Path,
) -> None:
    scenario = stage(tmp_path)
    other = dataclasses.replace(scenario, manifest=dataclasses.replace(
        scenario.manifest, revision="sha256:" + "e" * 64))  # fmt: skip
    deps = deps_for(scenario)
    registered = await register_staged(
        deps.registry, other, manifest_digest=scenario.store.put_manifest(scenario.manifest)
    )
    await on_revision_registered(registered, deps)
    _, rejected = await deps.registry.events(scenario.manifest.adapter)
    assert isinstance(rejected, RevisionRejected)
    [finding] = rejected.findings
    assert finding.code == "manifest_mismatch"
    assert finding.evidence == {
        "manifest": scenario.manifest.revision,
        "event": "sha256:" + "e" * 64,
    }


async def test_a_registration_that_ingest_already_rejected_is_only_marked_handled(
    tmp_path: Path,
) -> None:
    scenario = stage(tmp_path)
    deps = deps_for(scenario)
    registered = await register_staged(deps.registry, scenario, manifest_digest="")
    await on_revision_registered(registered, deps)
    assert committed(deps) == ["RevisionRegistered"]
    assert await deps.registry.handled(CONSUMER, registered.envelope.event_id)


async def test_a_registration_not_yet_in_the_registry_is_retried_not_judged(
    tmp_path: Path,
) -> None:
    scenario = stage(tmp_path)
    deps = deps_for(scenario)
    early = lifecycle(
        RevisionRegistered,
        scenario.manifest.adapter,
        scenario.manifest.revision,
        manifest_digest=scenario.store.put_manifest(scenario.manifest),
    )
    with pytest.raises(LookupError, match="not in the registry yet"):
        await on_revision_registered(early, deps)
    assert committed(deps) == []
    assert not await deps.registry.handled(CONSUMER, early.envelope.event_id)


class RacingRegistry(InMemoryRegistry):
    """Another writer commits `racer` right after the handler reads the revision."""

    def __init__(self, racer: LifecycleEvent) -> None:
        super().__init__()
        self.racer: LifecycleEvent | None = racer

    async def revision(self, adapter: str, revision: str) -> RevisionRecord | None:
        record = await super().revision(adapter, revision)
        if self.racer is not None:
            racer, self.racer = self.racer, None
            await self.transition(racer)
        return record


async def test_a_revision_moved_by_another_writer_meanwhile_is_not_overwritten(
    tmp_path: Path,
) -> None:
    scenario = stage(tmp_path)
    adapter, revision = scenario.manifest.adapter, scenario.manifest.revision
    registry = RacingRegistry(lifecycle(RevisionRejected, adapter, revision))
    deps = dataclasses.replace(deps_for(scenario), registry=registry)
    registered = await register_staged(registry, scenario)
    with pytest.raises(ConcurrentTransition):  # the dispatcher retries, and it decides again
        await on_revision_registered(registered, deps)
    assert committed(deps) == ["RevisionRegistered", "RevisionRejected"]
    assert not await registry.handled(CONSUMER, registered.envelope.event_id)
