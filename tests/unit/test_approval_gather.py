"""One revision's evidence gathered from the in-memory registry and read model and a real
artifact store on disk: the serving revision beside the candidate (who trained and approved
it, when it was activated, its recipe and data scope), a failed evaluation read-only
instead of missing, and a first revision with nothing to compare with."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.approval.evidence import EvidenceSources, gather
from services.approval.handlers import FLOW
from services.approval.verdicts import Verdict
from shared.artifacts import LocalArtifactStore
from shared.catalogue import EnvironmentSpec
from shared.events import (
    Finding,
    MetricResult,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionRegistered,
    RevisionValidated,
)
from shared.manifest import FileEntry, Manifest
from shared.registry.memory import InMemoryCatalogue, InMemoryRegistry
from tests.factories import lifecycle
from tests.fakes.approval import InMemoryApprovalStore

ADAPTER, ENV = "summarizer", "staging"
SERVING, CANDIDATE = "sha256:" + "1" * 64, "sha256:" + "2" * 64
METRICS = [
    MetricResult(name="accuracy", value=0.82, baseline=0.74, threshold=">= 0.70", passed=True),
    MetricResult(
        name="mean_loglik", value=-0.9, baseline=-1.2, threshold="change >= -1.00", passed=True
    ),
]


@dataclass
class World:
    registry: InMemoryRegistry
    reads: InMemoryApprovalStore
    store: LocalArtifactStore
    sources: EvidenceSources

    async def deliver(self, event: Any) -> None:
        """Commit `event`; project the sealed copy where the consumer would (FLOW.handles)."""
        committed = await self.registry.transition(event)
        if type(event) in FLOW.handles:
            await self.reads.project(committed.events[0])

    def manifest(self, revision: str, submitter: str, recipe: dict[str, Any]) -> str:
        return self.store.put_manifest(
            Manifest(
                adapter=ADAPTER,
                revision=revision,
                files=(FileEntry(path="adapter_model.safetensors", sha256="0" * 64, size=1),),
                base_model_id="tiny",
                base_model_revision="r1",
                tokenizer_revision="t1",
                tokenizer_hash="sha256:" + "c" * 64,
                chat_template_hash="sha256:" + "d" * 64,
                quantization_profile="bf16",
                recipe=recipe,
                data_scope={"corpora": ["tickets"], "time_window_start": "2025-01-01"},
                submitter=submitter,
                trained_event_id="t-" + revision[-4:],
                source_uri="file:///in",
            )
        )

    def report(self, body: dict[str, Any]) -> str:
        blob = self.store.put_stream(io.BytesIO(json.dumps(body).encode()), max_bytes=1 << 20)
        return "sha256:" + blob.sha256

    async def register(self, revision: str, submitter: str, recipe: dict[str, Any]) -> None:
        digest = self.manifest(revision, submitter, recipe)
        registered = lifecycle(
            RevisionRegistered, ADAPTER, revision, manifest_digest=digest, submitter=submitter
        )
        await self.deliver(registered)
        await self.deliver(lifecycle(RevisionValidated, ADAPTER, revision))


@pytest.fixture
def world(tmp_path: Path) -> World:
    registry = InMemoryRegistry()
    reads = InMemoryApprovalStore(registry)
    store = LocalArtifactStore(tmp_path)
    spec = EnvironmentSpec(
        name=ENV,
        base_model_id="tiny",
        base_model_revision="r1",
        tokenizer_hash="sha256:" + "c" * 64,
        chat_template_hash="sha256:" + "d" * 64,
        required_approvals=2,
    )
    catalogue = InMemoryCatalogue(environments=[spec])
    sources = EvidenceSources(registry, reads, catalogue, store, max_report_bytes=1 << 20)
    return World(registry, reads, store, sources)


async def _serving(w: World) -> None:
    """SERVING trained by zoe, approved by carol and dave, active in ENV."""
    await w.register(SERVING, "trainer-zoe", {"seed": 7, "evaluation_summary": {"loss": 0.41}})
    report = w.report({"items": []})
    await w.deliver(
        lifecycle(
            RevisionEvaluated, ADAPTER, SERVING, ENV, report_digest=report, baseline_revision=None
        )
    )
    await w.deliver(lifecycle(RevisionApproved, ADAPTER, SERVING, ENV, approvers=["carol", "dave"]))
    await w.deliver(lifecycle(RevisionActivated, ADAPTER, SERVING, ENV, previous_revision=None))


async def test_the_serving_revision_stands_beside_the_candidate(world: World) -> None:
    await _serving(world)
    await world.register(
        CANDIDATE, "trainer-alice", {"seed": 11, "evaluation_summary": {"loss": 0.41}}
    )
    report = world.report(
        {
            "items": [],
            "metrics": {"candidate": {"tokens_per_s": 40.0}, "baseline": {"tokens_per_s": 44.0}},
            "performance": {
                "measured_on": {"backend": "transformers", "device": "cpu", "dtype": "float32"},
                "figures": [
                    {"figure": "tokens_per_s", "target": t, "value": v, "backend": "transformers"}
                    for t, v in (("candidate", 40.0), ("baseline", 44.0))
                ],
            },
        }
    )
    await world.deliver(
        lifecycle(
            RevisionEvaluated,
            ADAPTER,
            CANDIDATE,
            ENV,
            report_digest=report,
            baseline_revision=SERVING,
            metrics=METRICS,
        )
    )
    found = await gather(world.sources, ADAPTER, CANDIDATE, ENV)
    assert found is not None and found.serving is not None
    serving = found.serving
    assert (serving.revision, serving.known, serving.state) == (SERVING, True, "active")
    assert (serving.submitter, serving.approvers) == ("trainer-zoe", ["carol", "dave"])
    assert serving.approved_at is not None and serving.activated_at is not None
    assert serving.serving_now is None and serving.problems == []
    assert (found.submitter, found.outcome) == ("trainer-alice", "evaluated")
    changed = {d.key: (d.serving, d.candidate) for d in found.comparison if d.changed}
    assert changed == {"recipe.seed": (["7"], ["11"])}
    assert {d.key for d in found.comparison} >= {
        "recipe.evaluation_summary.loss",
        "data_scope.corpora",
        "data_scope.time_window_start",
    }
    verdicts = {m.name: (m.verdict, m.greater_is_better) for m in found.metrics}
    assert verdicts == {
        "accuracy": (Verdict.PASSED, True),
        "mean_loglik": (Verdict.PASSED, True),
        "tokens_per_s": (Verdict.NOT_GATED, True),
    }
    assert found.measurement is not None and found.measurement.device == "cpu"
    [figure] = found.measurement.figures
    assert (figure.candidate, figure.baseline, figure.backend) == (40.0, 44.0, "transformers")


async def test_a_failed_evaluation_is_gathered_read_only_with_its_failed_gates(
    world: World,
) -> None:
    await _serving(world)
    await world.register(CANDIDATE, "trainer-alice", {"seed": 7})
    failed_gate = MetricResult(
        name="accuracy", value=0.5, baseline=0.74, threshold=">= 0.70", passed=False
    )
    finding = Finding(code="metric_below_threshold", severity="error", message="accuracy low")
    await world.deliver(
        lifecycle(
            RevisionEvaluationFailed,
            ADAPTER,
            CANDIDATE,
            ENV,
            cause="gates failed: accuracy",
            report_digest=None,
            report_uri=None,
            baseline_revision=SERVING,
            metrics=[failed_gate],
            findings=[finding],
        )
    )
    found = await gather(world.sources, ADAPTER, CANDIDATE, ENV)
    assert found is not None, "a failed evaluation is evidence too, not a 404"
    assert (found.outcome, found.state, found.failure_cause) == (
        "evaluation_failed",
        "evaluation_failed",
        "gates failed: accuracy",
    )
    assert found.report_digest is None and found.evidence_problems == []
    assert found.measurement is None  # no report: nothing says how anything was measured
    assert [(m.name, m.verdict) for m in found.metrics] == [("accuracy", Verdict.FAILED)]
    assert [f.code for f in found.evaluation_findings] == ["metric_below_threshold"]
    assert found.serving is not None and found.serving.submitter == "trainer-zoe"
    assert await gather(world.sources, ADAPTER, CANDIDATE, "production") is None


async def test_a_first_revision_has_no_serving_revision_and_relative_gates_read_na(
    world: World,
) -> None:
    await world.register(CANDIDATE, "trainer-alice", {"seed": 7})
    no_baseline = [
        MetricResult(name="accuracy", value=0.8, baseline=None, threshold=">= 0.70", passed=True),
        MetricResult(
            name="mean_loglik", value=-0.9, baseline=None, threshold="change >= -1.00", passed=True
        ),
    ]
    await world.deliver(
        lifecycle(
            RevisionEvaluated,
            ADAPTER,
            CANDIDATE,
            ENV,
            report_digest=world.report({}),
            baseline_revision=None,
            metrics=no_baseline,
        )
    )
    found = await gather(world.sources, ADAPTER, CANDIDATE, ENV)
    assert found is not None and found.serving is None
    assert not any(d.changed for d in found.comparison) and found.comparison
    assert [m.verdict for m in found.metrics] == [Verdict.PASSED, Verdict.NOT_APPLICABLE]


async def test_a_baseline_the_registry_does_not_know_is_said_plainly(world: World) -> None:
    await world.register(CANDIDATE, "trainer-alice", {"seed": 7})
    unknown = "sha256:" + "9" * 64
    await world.deliver(
        lifecycle(
            RevisionEvaluated,
            ADAPTER,
            CANDIDATE,
            ENV,
            report_digest=world.report({}),
            baseline_revision=unknown,
        )
    )
    found = await gather(world.sources, ADAPTER, CANDIDATE, ENV)
    assert found is not None and found.serving is not None
    assert (found.serving.revision, found.serving.known) == (unknown, False)
    assert found.serving.problems == [f"the registry has no revision {unknown} of {ADAPTER}"]
    assert [d.serving for d in found.comparison] == [None] * len(found.comparison)
