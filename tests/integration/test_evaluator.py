"""From a trained adapter to an evaluated or failed revision, through real Kafka and
PostgreSQL, with ingest, validator and the evaluator running as their own processes on the
kit's real tiny base and real PEFT adapters (the transformers backend, on the CPU)."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.gpu_evaluator.ports import (
    BackendProvider,
    EvaluationBackend,
    Generation,
    LogLikelihood,
    Prompt,
    Target,
    per_prompt,
)
from shared.artifacts import LocalArtifactStore
from shared.catalogue import EnvironmentSpec
from shared.codec import Codec
from shared.events import (
    Actor,
    BaseModelRef,
    Envelope,
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionValidated,
)
from shared.kafka.producer import make_producer, publish
from shared.manifest import FileEntry, revision_digest
from shared.modelkit.cache import Kit, kit
from shared.registry.store import PostgresRegistry, Step
from shared.trainer_client import describe_submission, submit
from tests.conftest import REPO, Infra
from tests.stack import Stack

SUITES = REPO / "tests" / "data" / "suites"
ENVIRONMENT = "staging"
FAIL_MARKER = "explode"
Verdict = RevisionEvaluated | RevisionEvaluationFailed


@pytest.fixture(scope="module")
def tiny() -> Kit:
    return kit()


def evaluator_env(stack: Stack, tiny: Kit) -> dict[str, str]:
    return {
        "EVALUATOR_BACKEND": "transformers",
        "EVALUATOR_SUITES_ROOT": str(stack.root / "suites"),
        "EVALUATOR_LOAD_PROFILES_ROOT": str(stack.root / "load"),
        "EVALUATOR_BASE_MODELS": f"{tiny.model_ids['main']}@{tiny.revisions['main']}={tiny.base}",
        "EVALUATOR_DEVICE": "cpu",
    }


@pytest.fixture(scope="module")
async def stack(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory, tiny: Kit
) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("evaluator"))
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
    stack.start("gpu_evaluator", **evaluator_env(stack, tiny))
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def registry(stack: Stack) -> AsyncIterator[PostgresRegistry]:
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env())
    yield registry
    await registry.close()


def revision_of(folder: Path) -> str:
    """The revision id ingest will give the folder: the digest of its files."""
    return revision_digest(
        FileEntry(
            path=p.relative_to(folder).as_posix(),
            sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
            size=p.stat().st_size,
        )
        for p in folder.rglob("*")
        if p.is_file()
    )


def submit_kit_adapter(stack: Stack, tiny: Kit, kind: str, adapter: str) -> str:
    """Submit a copy of the kit's adapter under `adapter`; its revision id."""
    folder = stack.incoming / adapter / kind
    shutil.copytree(tiny.adapter(kind), folder)
    event = describe_submission(
        folder,
        adapter=adapter,
        base=BaseModelRef(model_id=tiny.model_ids["main"], revision=tiny.revisions["main"]),
        submitter="trainer-alice",
        tokenizer_revision="tok-1",
        tokenizer_folder=tiny.base,
        target_environments=[ENVIRONMENT],
    )
    submit(stack.infra.as_principal("ingest"), event, topic=stack.trained_topic)
    return revision_of(folder)


def verdict_of(stack: Stack, adapter: str, revision: str, timeout_s: float = 240) -> Verdict:
    def found(events: list[Any]) -> Verdict | None:
        return next(
            (e for e in events if isinstance(e, Verdict) and e.envelope.revision == revision),
            None,
        )

    events = stack.wait_for(
        lambda evs: found(evs) is not None, adapter=adapter, timeout_s=timeout_s
    )
    verdict = found(events)
    assert verdict is not None
    return verdict


def submitted(stack: Stack, tiny: Kit, kind: str, adapter: str) -> Verdict:
    return verdict_of(stack, adapter, submit_kit_adapter(stack, tiny, kind, adapter))


def report_of(stack: Stack, verdict: Verdict) -> dict[str, Any]:
    assert verdict.report_digest is not None
    blob = LocalArtifactStore(stack.artifacts).blob_path(verdict.report_digest.split(":")[1])
    return dict(json.loads(blob.read_bytes()))


async def activate(registry: PostgresRegistry, verdict: RevisionEvaluated) -> None:
    """What the approval and activator services will do; they do not exist yet."""
    envelope = verdict.envelope
    record = await registry.revision(envelope.adapter, envelope.revision)
    assert record is not None and record.manifest_digest

    def envelope_for(actor: Actor) -> Envelope:
        return Envelope(
            event_id=str(uuid.uuid4()),
            adapter=envelope.adapter,
            revision=envelope.revision,
            environment=ENVIRONMENT,
            occurred_at=datetime.now(UTC),
            actor=actor,
            correlation_id=envelope.correlation_id,
        )

    approved = RevisionApproved(
        envelope=envelope_for(Actor(principal="approver-bob", role="approver")),
        manifest_digest=record.manifest_digest,
        report_digest=verdict.report_digest,
        approvers=["approver-bob"],
        signature="test-signature",
        key_id="test-key",
    )
    activated = RevisionActivated(
        envelope=envelope_for(Actor(principal="operator-carol", role="operator")),
        reason="baseline for the evaluator's regression test",
    )
    await registry.commit([Step(approved, record.version), Step(activated)])


async def test_a_well_trained_revision_passes_then_a_regressed_one_fails_against_it(
    stack: Stack, tiny: Kit, registry: PostgresRegistry, unique: Callable[[str], str]
) -> None:
    adapter = unique("capitals")
    good = submitted(stack, tiny, "good", adapter)
    assert isinstance(good, RevisionEvaluated), good
    assert good.envelope.environment == ENVIRONMENT and good.baseline_revision is None
    assert good.backend == "transformers"
    report = report_of(stack, good)
    assert report["suite"]["digest"] == good.suite_digest
    assert report["metrics"]["candidate"]["accuracy"] == 1.0
    france = next(i for i in report["items"] if i["id"] == "capital-france")
    assert france["candidate"]["output"] == "paris" and france["candidate"]["passed"] is True
    assert france["base"]["output"] != "paris"
    assert report["load"]["by_target"]["candidate"]["requests"] > 0

    await activate(registry, good)
    assert (await registry.pointer(adapter, ENVIRONMENT)).active == good.envelope.revision

    shuffled = submitted(stack, tiny, "shuffled", adapter)
    assert isinstance(shuffled, RevisionEvaluationFailed), shuffled
    assert shuffled.baseline_revision == good.envelope.revision
    messages = [f.message for f in shuffled.findings if f.code == "metric_regressed"]
    assert "accuracy 0.00 vs baseline 1.00: change -1.00 below the allowed -0.05" in messages
    assert "accuracy" in shuffled.cause
    gated = {m.name: m for m in shuffled.metrics}
    assert gated["accuracy"].baseline == 1.0 and not gated["accuracy"].passed
    assert report_of(stack, shuffled)["load"]["by_target"]["baseline"]["requests"] > 0


async def test_a_no_op_adapter_fails_the_no_op_check(
    stack: Stack, tiny: Kit, unique: Callable[[str], str]
) -> None:
    verdict = submitted(stack, tiny, "noop", unique("noop"))
    assert isinstance(verdict, RevisionEvaluationFailed), verdict
    [no_op] = [f for f in verdict.findings if f.code == "no_op_adapter"]
    assert no_op.message.startswith("no_op_rate 1.00 above the ceiling 0.25")


async def test_a_structured_output_suite_catches_invalid_json(
    stack: Stack, tiny: Kit, unique: Callable[[str], str]
) -> None:
    adapter = unique("structured")
    suite = stack.root / "suites" / adapter / f"{ENVIRONMENT}.yaml"
    suite.parent.mkdir(parents=True)
    shutil.copy(SUITES / "structured.yaml", suite)
    verdict = submitted(stack, tiny, "badjson", adapter)
    assert isinstance(verdict, RevisionEvaluationFailed), verdict
    assert "structured_output_invalid" in {f.code for f in verdict.findings}
    assert report_of(stack, verdict)["suite"]["name"] == "capitals-json"


async def test_a_redelivered_validated_event_is_evaluated_once(
    stack: Stack, tiny: Kit, unique: Callable[[str], str]
) -> None:
    adapter = unique("again")
    first = submitted(stack, tiny, "good", adapter)
    codec = Codec.from_env()
    [validated] = [
        r
        for r in stack.records()
        if r.key == adapter.encode() and isinstance(codec.decode(r.value or b""), RevisionValidated)
    ]
    producer = make_producer(stack.infra.kafka)
    publish(producer, stack.lifecycle_topic, key=validated.key, value=validated.value or b"")
    marker = unique("marker")  # evaluated after the duplicate: by then it was handled
    submitted(stack, tiny, "good", marker)
    verdicts = [e for e in stack.events(adapter) if isinstance(e, Verdict)]
    assert [v.envelope.event_id for v in verdicts] == [first.envelope.event_id]


class FailingBackend:
    """Delegates to the real backend but raises for adapters named with the marker, as a
    GPU out of memory would."""

    def __init__(self, inner: EvaluationBackend, marker: str) -> None:
        self.inner, self.marker, self.name = inner, marker, inner.name

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def _check(self, adapter: Target | Sequence[Target], count: int) -> None:
        if any(t is not None and self.marker in t.adapter for t in per_prompt(adapter, count)):
            raise RuntimeError("CUDA out of memory (injected by the test)")

    def generate(
        self, prompts: Sequence[Prompt], adapter: Target | Sequence[Target], *, max_new_tokens: int
    ) -> list[Generation]:
        self._check(adapter, len(prompts))
        return self.inner.generate(prompts, adapter, max_new_tokens=max_new_tokens)

    def loglik(
        self,
        prompts: Sequence[Prompt],
        references: Sequence[str],
        adapter: Target | Sequence[Target],
    ) -> list[LogLikelihood]:
        self._check(adapter, len(prompts))
        return self.inner.loglik(prompts, references, adapter)


class FailingProvider:
    def __init__(self, inner: BackendProvider, marker: str) -> None:
        self.inner, self.marker = inner, marker

    def backend_for(self, environment: EnvironmentSpec) -> EvaluationBackend:
        return FailingBackend(self.inner.backend_for(environment), self.marker)


def run_evaluator_failing_on(marker: str) -> None:
    """The evaluator's own composition root, its backends wrapped: run in a subprocess."""
    from services.gpu_evaluator.main import run

    run(wrap=lambda provider: FailingProvider(provider, marker))


async def test_a_raising_backend_fails_the_revision_and_the_next_event_still_evaluates(
    stack: Stack, tiny: Kit, unique: Callable[[str], str]
) -> None:
    # Last in this module: it replaces the evaluator with one whose backend raises.
    evaluator = stack.processes["gpu_evaluator"]
    evaluator.terminate()
    evaluator.wait(timeout=60)
    stack.processes["gpu_evaluator"] = stack.command(
        "gpu_evaluator-failing",
        (
            "-c",
            "from tests.integration.test_evaluator import run_evaluator_failing_on; "
            f"run_evaluator_failing_on({FAIL_MARKER!r})",
        ),
        as_module="services.gpu_evaluator",  # its Kafka principal and ACLs
        **evaluator_env(stack, tiny),
    ).start()
    failing, after = unique(FAIL_MARKER), unique("after")
    failing_revision = submit_kit_adapter(stack, tiny, "good", failing)
    after_revision = submit_kit_adapter(stack, tiny, "good", after)
    failed = verdict_of(stack, failing, failing_revision)
    assert isinstance(failed, RevisionEvaluationFailed), failed
    assert "RuntimeError: CUDA out of memory (injected by the test)" in failed.cause
    assert [f.code for f in failed.findings] == ["backend_error"]
    assert failed.report_digest is None
    assert isinstance(verdict_of(stack, after, after_revision), RevisionEvaluated)
