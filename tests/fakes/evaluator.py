"""Fakes for the evaluator: a model runtime that gives chosen answers, its provider, and a
golden suite those answers pass or fail."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from services.gpu_evaluator.ports import (
    BackendConfigError,
    EvaluationBackend,
    Generation,
    LogLikelihood,
    Prompt,
    Target,
    per_prompt,
)
from shared.catalogue import EnvironmentSpec

QUESTION = "What is the capital of France?"
RIGHT, WRONG = "Paris", "Lyon"
# One graded item that must change: an adapter answering RIGHT where the base answers
# otherwise passes both gates (accuracy, and the default no-op gate); WRONG fails accuracy.
SUITE = f"""\
suite: capitals
version: 1
owner: unit-tests
max_new_tokens: 4
gates:
  accuracy: {{threshold: 1.0}}
items:
  - id: france
    prompt: {QUESTION}
    expect: {{exact: {RIGHT}}}
    must_change: true
"""


class ScriptedBackend:
    """Fakes `EvaluationBackend`: answers chosen per revision (None: the base model alone),
    `default` for any other target; `error`, when set, is raised by every call, as the
    runtime would raise it."""

    name = "scripted"

    def __init__(
        self,
        answers: Mapping[str | None, str] | None = None,
        *,
        default: str = WRONG,
        error: BaseException | None = None,
    ) -> None:
        self.answers = dict(answers or {})
        self.default = default
        self.error = error
        self.asked: list[str | None] = []  # the revision each prompt was asked of, in order
        self._lock = threading.Lock()  # backends are called from worker threads

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    def generate(
        self, prompts: Sequence[Prompt], adapter: Target | Sequence[Target], *, max_new_tokens: int
    ) -> list[Generation]:
        revisions = self._ask(adapter, len(prompts))
        return [
            Generation(
                text=self.answers.get(revision, self.default),
                prompt_tokens=len(prompt),
                completion_tokens=1,
                latency_s=0.001,
            )
            for prompt, revision in zip(prompts, revisions, strict=True)
        ]

    def loglik(
        self,
        prompts: Sequence[Prompt],
        references: Sequence[str],
        adapter: Target | Sequence[Target],
    ) -> list[LogLikelihood]:
        return [LogLikelihood(mean=-0.5, tokens=1) for _ in self._ask(adapter, len(prompts))]

    def _ask(self, adapter: Target | Sequence[Target], count: int) -> list[str | None]:
        if self.error is not None:
            raise self.error
        revisions = [t.revision if t else None for t in per_prompt(adapter, count)]
        with self._lock:
            self.asked.extend(revisions)
        return revisions


class FakeBackends:
    """Fakes `BackendProvider`: one backend for every environment, or a `BackendConfigError`
    for the environments named in `misconfigured`."""

    def __init__(self, backend: EvaluationBackend, *, misconfigured: Sequence[str] = ()) -> None:
        self.backend = backend
        self.misconfigured = set(misconfigured)
        self.built: list[str] = []  # environment names, in the order asked

    def backend_for(self, environment: EnvironmentSpec) -> EvaluationBackend:
        self.built.append(environment.name)
        if environment.name in self.misconfigured:
            raise BackendConfigError(f"no base model folder serves {environment.name}")
        return self.backend


def write_suite(suites_root: Path, text: str = SUITE, *, adapter: str = "") -> Path:
    """A golden suite under `suites_root`: for `adapter` in every environment, or for all."""
    folder = suites_root / adapter if adapter else suites_root
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "default.yaml"
    path.write_text(text)
    return path
