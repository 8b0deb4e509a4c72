"""Only the runtime's failures become a verdict (ADR 0008): out of memory, a missing file
or weights that do not load fail the revision on the log; a bug of ours propagates to the
dispatcher's retries and dead-letter topic, and the revision stays evaluable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.gpu_evaluator.backends import adapter_loading, backend_errors
from services.gpu_evaluator.deps import EvaluatorDeps
from services.gpu_evaluator.handlers import evaluate_in
from services.gpu_evaluator.ports import (
    AdapterRef,
    BackendError,
    BackendUnavailable,
    EvaluationBackend,
    Generation,
    Prompt,
    Target,
)
from shared.artifacts import LocalArtifactStore
from shared.catalogue import EnvironmentSpec
from shared.events import RevisionEvaluationFailed, RevisionRegistered, RevisionValidated
from shared.manifest import Manifest
from shared.registry.memory import InMemoryRegistry
from tests.factories import lifecycle
from tests.pipeline.instant import InstantBackend, write_instant_suite


class OutOfMemoryError(RuntimeError):
    """Named as torch names its own (`torch.OutOfMemoryError`)."""


@pytest.mark.parametrize(
    "error",
    [
        OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: an illegal memory access was encountered"),
        RuntimeError(
            "DefaultCPUAllocator: not enough memory: you tried to allocate; out of memory"
        ),
        MemoryError(),
        FileNotFoundError("adapter_model.safetensors"),
        PermissionError("weights unreadable"),
    ],
)
def test_the_runtimes_resource_errors_become_backend_errors(error: Exception) -> None:
    with pytest.raises(BackendError) as raised, backend_errors():
        raise error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        KeyError("a bug of ours"),
        TypeError("a bug of ours"),
        AssertionError("a broken invariant"),
        RuntimeError("a plain bug"),
        BackendUnavailable("the remote fleet is down"),
    ],
)
def test_anything_else_passes_through_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, backend_errors():
        raise error
    assert raised.value is error


def test_weights_that_do_not_load_are_the_revisions_backend_error(tmp_path: Path) -> None:
    ref = AdapterRef("chat", "sha256:" + "1" * 64, tmp_path)
    with pytest.raises(BackendError, match="adapter chat does not load"), adapter_loading(ref):
        raise ValueError("size mismatch for lora_A.weight")


class RaisingBackend(InstantBackend):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def generate(
        self, prompts: Sequence[Prompt], adapter: Target | Sequence[Target], *, max_new_tokens: int
    ) -> list[Generation]:
        raise self.error


class OneBackend:
    def __init__(self, backend: EvaluationBackend) -> None:
        self.backend = backend

    def backend_for(self, environment: EnvironmentSpec) -> EvaluationBackend:
        return self.backend


class OneEnvironment:
    spec = EnvironmentSpec(
        name="prod",
        base_model_id="base",
        base_model_revision="b1",
        tokenizer_hash="t",
        chat_template_hash="c",
    )

    async def environment(self, name: str) -> EnvironmentSpec | None:
        return self.spec if name == self.spec.name else None


async def evaluate_with(tmp_path: Path, error: Exception) -> Any:
    store = LocalArtifactStore(tmp_path / "store")
    manifest = Manifest(
        adapter="chat",
        revision="sha256:" + "1" * 64,
        files=(),
        base_model_id="base",
        base_model_revision="b1",
        tokenizer_revision="tok",
        tokenizer_hash="t",
        chat_template_hash="c",
        quantization_profile="bf16",
        submitter="alice",
        trained_event_id="t",
        source_uri="file:///x",
    )
    digest = store.put_manifest(manifest)
    registry = InMemoryRegistry()
    await registry.transition(
        lifecycle(RevisionRegistered, "chat", manifest.revision, manifest_digest=digest)
    )
    record = await registry.revision("chat", manifest.revision)
    assert record is not None
    suites = tmp_path / "suites"
    write_instant_suite(suites)
    deps = EvaluatorDeps(
        registry=registry,
        catalogue=OneEnvironment(),  # type: ignore[arg-type]
        store=store,
        backends=OneBackend(RaisingBackend(error)),
        suites_root=suites,
    )
    event = lifecycle(RevisionValidated, "chat", manifest.revision)
    return await evaluate_in("prod", event, record, deps)


async def test_a_backend_out_of_memory_is_the_revisions_verdict(tmp_path: Path) -> None:
    verdict = await evaluate_with(tmp_path, OutOfMemoryError("CUDA out of memory"))
    assert isinstance(verdict, RevisionEvaluationFailed)
    assert "OutOfMemoryError: CUDA out of memory" in verdict.cause
    assert [f.code for f in verdict.findings] == ["backend_error"]


async def test_a_bug_in_our_code_propagates_and_no_verdict_is_made(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="a bug of ours"):
        await evaluate_with(tmp_path, KeyError("a bug of ours"))
