"""Bytes changed on disk after they were judged never reach serving (issue #16), on real
Kafka and PostgreSQL with each service as its own process and reference replicas on the
kit's tiny base: a blob changed after validation is caught by the evaluator before it
judges anything; one changed after evaluation is caught by the activator before any
replica loads it; a served revision changed at rest is caught by the archiver's scrubber.
Each is committed to the log as RevisionQuarantined naming the file, and the revision is
never loaded, approved or rolled back to again."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from infra.processes import wait_http
from shared.events import (
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionQuarantined,
    RevisionRolledBack,
    RevisionValidated,
)
from shared.lifecycle import InvalidTransition, State
from shared.modelkit.cache import Kit, kit
from shared.registry.store import Step
from tests.conftest import Infra
from tests.factories import lifecycle
from tests.integration.test_activator import (
    ENV,
    Rollouts,
    kit_files,
    rollouts_stack,  # noqa: F401 (the `rollouts` fixture)
)
from tests.integration.test_evaluator import (
    ENVIRONMENT,
    SUITES,
    evaluator_env,
    submit_kit_adapter,
)
from tests.stack import Stack


def tamper(path: Path) -> None:
    """An insider with write access to the disk flips the first byte in place."""
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))


def quarantine_of(stack: Stack, adapter: str, timeout_s: float = 120) -> RevisionQuarantined:
    events = stack.wait_for(
        lambda evs: any(isinstance(e, RevisionQuarantined) for e in evs),
        adapter=adapter,
        timeout_s=timeout_s,
    )
    found = next(e for e in events if isinstance(e, RevisionQuarantined))
    assert isinstance(found, RevisionQuarantined)
    return found


# --- after validation: the evaluator ------------------------------------------------------


@pytest.fixture(scope="module")
async def validating(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, Kit]]:
    """Ingest and validator running; the evaluator is started by the test, after the change."""
    tiny = kit()
    stack = Stack(infra, tmp_path_factory.mktemp("integrity-eval"))
    await stack.create()
    (stack.root / "suites").mkdir()
    shutil.copy(SUITES / "default.yaml", stack.root / "suites" / "default.yaml")
    shutil.copytree(SUITES / "load", stack.root / "load")
    base_id, base_revision = stack.register_kit_base(tiny)
    stack.adapterctl(
        "env", "set", ENVIRONMENT, "--base", f"{base_id}@{base_revision}", "--max-lora-rank", "16"
    )
    stack.start("ingest")
    stack.start("validator")
    yield stack, tiny
    stack.stop()


async def test_a_blob_changed_after_validation_is_quarantined_by_the_evaluator_unjudged(
    validating: tuple[Stack, Kit], unique: Callable[[str], str]
) -> None:
    stack, tiny = validating
    adapter = unique("tampered-before-eval")
    revision = submit_kit_adapter(stack, tiny, "good", adapter)
    stack.wait_for(lambda evs: any(isinstance(e, RevisionValidated) for e in evs), adapter=adapter)
    weights = next(e for _, e in kit_files(tiny.adapter("good")) if e.path.endswith("safetensors"))
    # Ingest made the verified copy the evaluator will read; that copy changes.
    served = Path(stack.artifacts) / "revisions" / adapter / revision.removeprefix("sha256:")
    tamper(served / weights.path)

    stack.start("gpu_evaluator", **evaluator_env(stack, tiny))
    quarantine = quarantine_of(stack, adapter, timeout_s=240)

    assert quarantine.envelope.revision == revision and quarantine.detected_by == "evaluator"
    [finding] = quarantine.findings
    assert finding.code == "artifact_changed" and finding.evidence["path"] == weights.path
    assert finding.evidence["expected_sha256"] == weights.sha256
    assert finding.evidence["where"] == "served copy"
    await asyncio.sleep(2)  # what the evaluator did next, if anything
    assert not any(isinstance(e, RevisionEvaluated) for e in stack.events(adapter))


# --- after evaluation: the activator; while active: the scrubber --------------------------


@pytest.fixture(scope="module")
async def serving(rollouts: Rollouts) -> AsyncIterator[Rollouts]:
    """The activator's stack, with an archiver scrubbing the store every second."""
    rollouts.stack.start(
        "archiver", ARCHIVER_SCRUB_INTERVAL_S="1", ARCHIVER_SWEEP_INTERVAL_S="3600"
    )
    await asyncio.to_thread(wait_http, rollouts.stack.env()["ARCHIVER_URL"] + "/healthz")
    yield rollouts


async def approve_after(rollouts: Rollouts, adapter: str, kind: str, change: Any) -> str:
    """Stored, registered, validated and evaluated; `change(store)` runs; then approved."""
    approved = await rollouts.approve(adapter, kind, commit=False)
    events, approval = approved.events[:-1], approved.events[-1]
    await rollouts.registry.commit([Step(e) for e in events])
    change(rollouts.store)
    await rollouts.registry.commit([Step(approval)])
    return approved.revision


async def test_a_blob_changed_after_evaluation_is_never_loaded(
    serving: Rollouts, unique: Callable[[str], str]
) -> None:
    rollouts = serving
    adapter = unique("tampered-before-load")
    weights = next(
        e for _, e in kit_files(rollouts.tiny.adapter("good")) if e.path.endswith("safetensors")
    )
    blob = rollouts.store.blob_path(weights.sha256)
    revision = await approve_after(rollouts, adapter, "good", lambda _store: tamper(blob))

    quarantine = quarantine_of(rollouts.stack, adapter)
    tamper(blob)  # flipped back: the kit's other revisions in this module share the blob

    assert quarantine.detected_by in ("activator", "scrubber")  # whichever read it first
    assert quarantine.findings[0].evidence["path"] == weights.path
    lora = f"{adapter}@{revision.removeprefix('sha256:')[:16]}"
    for url in rollouts.replicas:
        assert lora not in rollouts.models(url)  # no replica was ever asked to load it
    record = await rollouts.registry.revision(adapter, revision)
    assert record is not None and record.status.revision_track is State.QUARANTINED
    assert not any(isinstance(e, RevisionActivated) for e in rollouts.stack.events(adapter))


async def test_a_served_revision_changed_at_rest_is_quarantined_by_the_scrubber(
    serving: Rollouts, unique: Callable[[str], str]
) -> None:
    rollouts = serving
    adapter = unique("tampered-while-active")
    first = await rollouts.approve(adapter, "good")
    rollouts.wait(adapter, (RevisionActivated, first.revision))
    with rollouts.traffic(adapter):  # the canary's analysis needs requests to promote it
        second = await rollouts.approve(adapter, "json")
        rollouts.wait(adapter, (RevisionActivated, second.revision), timeout_s=180)
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert pointer.rollback_target == first.revision  # one command away, before the change

    manifest_files = dict(kit_files(rollouts.tiny.adapter("good")))
    weights = next(e for e in manifest_files.values() if e.path.endswith("safetensors"))
    served = rollouts.store.revision_dir(_manifest_of(rollouts, adapter, first.revision))
    tamper(served / weights.path)  # the read-only served copy, changed by root anyway

    quarantine = quarantine_of(rollouts.stack, adapter)

    assert quarantine.envelope.revision == first.revision
    assert quarantine.detected_by == "scrubber"
    assert quarantine.findings[0].evidence["where"] == "served copy"
    pointer = await rollouts.registry.pointer(adapter, ENV)
    assert pointer.active == second.revision and pointer.rollback_target is None
    with pytest.raises(InvalidTransition, match="quarantined revision's may only give traffic"):
        await rollouts.registry.transition(
            lifecycle(RevisionActivated, adapter, first.revision, ENV, previous_revision=None)
        )

    # The active revision itself changes: quarantined while it serves, it keeps what its
    # replicas verified at load until the operator takes its traffic away (ADR 0020).
    json_weights = next(
        e for _, e in kit_files(rollouts.tiny.adapter("json")) if e.path.endswith("safetensors")
    )
    active_copy = rollouts.store.revision_dir(_manifest_of(rollouts, adapter, second.revision))
    tamper(active_copy / json_weights.path)
    quarantined = rollouts.stack.wait_for(
        lambda evs: sum(isinstance(e, RevisionQuarantined) for e in evs) == 2, adapter=adapter
    )
    assert any(
        isinstance(e, RevisionQuarantined) and e.envelope.revision == second.revision
        for e in quarantined
    )
    assert (await rollouts.registry.pointer(adapter, ENV)).active == second.revision
    await rollouts.registry.transition(
        lifecycle(RevisionRolledBack, adapter, second.revision, ENV, restored_revision=None)
    )
    assert (await rollouts.registry.pointer(adapter, ENV)).active is None


def _manifest_of(rollouts: Rollouts, adapter: str, revision: str) -> Any:
    for path in (Path(rollouts.stack.artifacts) / "manifests" / "sha256").glob("*.json"):
        manifest = rollouts.store.get_manifest("sha256:" + path.stem)
        if (manifest.adapter, manifest.revision) == (adapter, revision):
            return manifest
    raise AssertionError(f"no manifest for {adapter}@{revision}")


async def test_an_approval_of_a_quarantined_revision_is_refused_by_the_registry(
    serving: Rollouts, unique: Callable[[str], str]
) -> None:
    rollouts = serving
    adapter = unique("quarantined-then-approved")
    weights = next(
        e for _, e in kit_files(rollouts.tiny.adapter("good")) if e.path.endswith("safetensors")
    )
    approved = await rollouts.approve(adapter, "good", commit=False)
    await rollouts.registry.commit([Step(e) for e in approved.events[:2]])  # registered, valid
    blob = rollouts.store.blob_path(weights.sha256)
    tamper(blob)
    quarantine_of(rollouts.stack, adapter)  # the scrubber's pass reaches it
    tamper(blob)  # flipped back
    with pytest.raises(InvalidTransition):
        await rollouts.registry.commit([Step(e) for e in approved.events[2:]])
    assert not any(isinstance(e, RevisionApproved) for e in rollouts.stack.events(adapter))
