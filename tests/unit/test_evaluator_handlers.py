"""The evaluator's handler against the in-memory registry and a scripted backend: a revision
that passes its gates is evaluated, one that fails them is failed with its metrics, a
redelivery changes nothing, and setup errors and our own bugs leave it evaluable."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.gpu_evaluator.deps import EvaluatorDeps
from services.gpu_evaluator.handlers import CONSUMER, handlers, on_revision_validated
from services.gpu_evaluator.ports import EvaluationBackend
from shared.artifacts import ArtifactStore, LocalArtifactStore
from shared.catalogue import EnvironmentSpec
from shared.events import (
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionRegistered,
    RevisionValidated,
)
from shared.kafka.dispatch import PermanentError
from shared.lifecycle import State
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.registry.memory import InMemoryCatalogue, InMemoryRegistry
from shared.registry.port import Step
from tests.factories import lifecycle
from tests.fakes.evaluator import RIGHT, WRONG, FakeBackends, ScriptedBackend, write_suite

ADAPTER = "support-bot"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
TOKENIZER, TEMPLATE = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def environment(name: str) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=name,
        base_model_id="tiny",
        base_model_revision="b1",
        tokenizer_hash=TOKENIZER,
        chat_template_hash=TEMPLATE,
    )


def deps_for(
    tmp_path: Path, backend: EvaluationBackend, *, misconfigured: tuple[str, ...] = ()
) -> EvaluatorDeps:
    write_suite(tmp_path / "suites")
    return EvaluatorDeps(
        registry=InMemoryRegistry(),
        catalogue=InMemoryCatalogue(environments=[environment("staging"), environment("prod")]),
        store=LocalArtifactStore(tmp_path / "store"),
        backends=FakeBackends(backend, misconfigured=misconfigured),
        suites_root=tmp_path / "suites",
        now=lambda: NOW,
    )


def stored_manifest(store: ArtifactStore, weights: bytes) -> tuple[Manifest, str]:
    blob = store.put_stream(io.BytesIO(weights), max_bytes=1 << 20)
    files = (FileEntry(path="adapter_model.safetensors", sha256=blob.sha256, size=blob.size),)
    manifest = Manifest(
        adapter=ADAPTER,
        revision=revision_digest(files),
        files=files,
        base_model_id="tiny",
        base_model_revision="b1",
        tokenizer_revision="tok",
        tokenizer_hash=TOKENIZER,
        chat_template_hash=TEMPLATE,
        quantization_profile="bf16",
        submitter="alice",
        trained_event_id="t",
        source_uri="file:///incoming/x",
    )
    return manifest, store.put_manifest(manifest)


async def validated(
    deps: EvaluatorDeps,
    weights: bytes,
    environments: tuple[str, ...] = ("staging",),
    *,
    manifest_digest: str | None = None,
) -> RevisionValidated:
    """A revision registered with a stored manifest and validated for `environments`."""
    manifest, digest = stored_manifest(deps.store, weights)
    steps = [
        Step(
            lifecycle(
                RevisionRegistered,
                ADAPTER,
                manifest.revision,
                manifest_digest=digest if manifest_digest is None else manifest_digest,
            )
        ),
        Step(
            lifecycle(
                RevisionValidated, ADAPTER, manifest.revision, checked_environments=[*environments]
            )
        ),
    ]
    event = (await deps.registry.commit(steps)).events[-1]
    assert isinstance(event, RevisionValidated)
    return event


async def activate(deps: EvaluatorDeps, event: RevisionValidated, environment: str) -> None:
    revision = event.envelope.revision
    for step in (
        lifecycle(RevisionEvaluated, ADAPTER, revision, environment),
        lifecycle(RevisionApproved, ADAPTER, revision, environment),
        lifecycle(RevisionActivated, ADAPTER, revision, environment),
    ):
        await deps.registry.transition(step)


def committed(deps: EvaluatorDeps) -> list[str]:
    registry = deps.registry
    assert isinstance(registry, InMemoryRegistry)
    return [entry.event_type.rsplit(".", 1)[-1] for entry in registry.outbox]


async def verdicts(
    deps: EvaluatorDeps, event: RevisionValidated
) -> list[RevisionEvaluated | RevisionEvaluationFailed]:
    found = await deps.registry.events(ADAPTER, event.envelope.revision)
    return [e for e in found if isinstance(e, RevisionEvaluated | RevisionEvaluationFailed)]


async def test_a_revision_that_passes_its_gates_is_evaluated_with_a_stored_report(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend({None: WRONG}, default=RIGHT)
    deps = deps_for(tmp_path, backend)
    event = await validated(deps, b"weights-1")
    await handlers(deps)[RevisionValidated](event)

    [verdict] = await verdicts(deps, event)
    assert isinstance(verdict, RevisionEvaluated)
    assert verdict.envelope.environment == "staging"
    assert verdict.envelope.causation_id == event.envelope.event_id
    assert verdict.backend == "scripted" and verdict.baseline_revision is None
    assert verdict.suite_digest.startswith("sha256:")
    assert {m.name: m.passed for m in verdict.metrics}["accuracy"] is True
    report = deps.store.blob_path(verdict.report_digest.removeprefix("sha256:"))
    assert report.is_file() and verdict.report_uri.endswith(report.name)
    record = await deps.registry.revision(ADAPTER, event.envelope.revision)
    assert record is not None and record.version == 3
    assert record.status.track("staging") is State.EVALUATED
    assert backend.asked.count(event.envelope.revision) >= 1 and None in backend.asked
    assert await deps.registry.handled(CONSUMER, event.envelope.event_id)


async def test_each_checked_environment_gets_its_verdict_in_one_commit(tmp_path: Path) -> None:
    deps = deps_for(tmp_path, ScriptedBackend({None: WRONG}, default=RIGHT))
    event = await validated(deps, b"weights-1", ("staging", "prod"))
    await on_revision_validated(event, deps)
    found = await verdicts(deps, event)
    assert [(type(v).__name__, v.envelope.environment) for v in found] == [
        ("RevisionEvaluated", "staging"),
        ("RevisionEvaluated", "prod"),
    ]
    record = await deps.registry.revision(ADAPTER, event.envelope.revision)
    assert record is not None and record.version == 4


async def test_a_redelivered_validation_is_evaluated_once(tmp_path: Path) -> None:
    backend = ScriptedBackend({None: WRONG}, default=RIGHT)
    deps = deps_for(tmp_path, backend)
    event = await validated(deps, b"weights-1")
    await on_revision_validated(event, deps)
    asked = len(backend.asked)
    await on_revision_validated(event, deps)
    assert committed(deps) == ["RevisionRegistered", "RevisionValidated", "RevisionEvaluated"]
    assert len(backend.asked) == asked


@pytest.mark.parametrize(
    ("base", "candidate", "failed"),
    [(RIGHT, WRONG, "accuracy"), (RIGHT, RIGHT, "no_op_rate")],
    ids=["wrong answer", "changes nothing"],
)
async def test_a_revision_that_fails_a_gate_is_failed_with_the_metric_that_failed(
    tmp_path: Path, base: str, candidate: str, failed: str
) -> None:
    deps = deps_for(tmp_path, ScriptedBackend({None: base}, default=candidate))
    event = await validated(deps, b"weights-1")
    await on_revision_validated(event, deps)

    [verdict] = await verdicts(deps, event)
    assert isinstance(verdict, RevisionEvaluationFailed)
    assert verdict.cause == f"1 gate(s) failed: {failed}"
    assert [m.name for m in verdict.metrics if not m.passed] == [failed]
    assert [f.evidence["metric"] for f in verdict.findings] == [failed]
    assert verdict.report_digest is not None  # the evidence is kept for a failure too
    record = await deps.registry.revision(ADAPTER, event.envelope.revision)
    assert record is not None and record.status.track("staging") is State.EVALUATION_FAILED


async def test_a_revision_is_compared_with_the_revision_serving_in_its_environment(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend({None: WRONG}, default=RIGHT)
    deps = deps_for(tmp_path, backend)
    serving = await validated(deps, b"weights-0")
    await activate(deps, serving, "staging")
    candidate = await validated(deps, b"weights-1")
    await on_revision_validated(candidate, deps)

    [verdict] = await verdicts(deps, candidate)
    assert isinstance(verdict, RevisionEvaluated)
    assert verdict.baseline_revision == serving.envelope.revision
    assert serving.envelope.revision in backend.asked


async def test_the_runtime_running_out_of_memory_is_the_revisions_verdict(
    tmp_path: Path,
) -> None:
    deps = deps_for(tmp_path, ScriptedBackend(error=MemoryError("no room for the adapter")))
    event = await validated(deps, b"weights-1")
    await on_revision_validated(event, deps)
    [verdict] = await verdicts(deps, event)
    assert isinstance(verdict, RevisionEvaluationFailed)
    assert [f.code for f in verdict.findings] == ["backend_error"]
    assert "MemoryError" in verdict.cause


async def test_a_manifest_missing_from_the_store_fails_the_revision_as_unreadable(
    tmp_path: Path,
) -> None:
    deps = deps_for(tmp_path, ScriptedBackend(default=RIGHT))
    event = await validated(deps, b"weights-1", manifest_digest="sha256:" + "0" * 64)
    await on_revision_validated(event, deps)
    [verdict] = await verdicts(deps, event)
    assert isinstance(verdict, RevisionEvaluationFailed)
    assert [f.code for f in verdict.findings] == ["artifact_unreadable"]


async def test_an_environment_missing_from_the_catalogue_fails_the_revision_there(
    tmp_path: Path,
) -> None:
    deps = deps_for(tmp_path, ScriptedBackend({None: WRONG}, default=RIGHT))
    event = await validated(deps, b"weights-1", ("staging", "nowhere"))
    await on_revision_validated(event, deps)
    staging, nowhere = await verdicts(deps, event)
    assert isinstance(staging, RevisionEvaluated)
    assert isinstance(nowhere, RevisionEvaluationFailed)
    assert nowhere.cause == "environment nowhere is unknown"


@pytest.mark.parametrize("broken", ["suite", "backend"])
async def test_a_setup_the_operator_must_fix_is_dead_lettered_and_nothing_is_judged(
    tmp_path: Path, broken: str
) -> None:
    misconfigured = ("staging",) if broken == "backend" else ()
    deps = deps_for(tmp_path, ScriptedBackend(default=RIGHT), misconfigured=misconfigured)
    if broken == "suite":
        (tmp_path / "suites" / "default.yaml").unlink()
    event = await validated(deps, b"weights-1")
    with pytest.raises(PermanentError, match="cannot evaluate in staging"):
        await on_revision_validated(event, deps)
    assert committed(deps) == ["RevisionRegistered", "RevisionValidated"]
    assert not await deps.registry.handled(CONSUMER, event.envelope.event_id)


async def test_a_bug_in_our_code_propagates_and_the_revision_stays_evaluable(
    tmp_path: Path,
) -> None:
    deps = deps_for(tmp_path, ScriptedBackend(error=KeyError("a bug of ours")))
    event = await validated(deps, b"weights-1")
    with pytest.raises(KeyError, match="a bug of ours"):
        await on_revision_validated(event, deps)
    record = await deps.registry.revision(ADAPTER, event.envelope.revision)
    assert record is not None and record.status.track("staging") is State.VALIDATED
    assert not await deps.registry.handled(CONSUMER, event.envelope.event_id)


async def test_a_revision_already_judged_everywhere_is_only_marked_handled(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend(default=RIGHT)
    deps = deps_for(tmp_path, backend)
    event = await validated(deps, b"weights-1")
    await deps.registry.transition(
        lifecycle(RevisionEvaluated, ADAPTER, event.envelope.revision, "staging")
    )
    await on_revision_validated(event, deps)
    assert committed(deps)[-1] == "RevisionEvaluated" and len(committed(deps)) == 3
    assert backend.asked == []
    assert await deps.registry.handled(CONSUMER, event.envelope.event_id)
