"""An evaluator whose model answers instantly, for drills and benchmarks that measure the
pipeline itself (Kafka, the registry, the services' own work), not a model's speed.

The backend is an oracle: an adapter answers every prompt with `ANSWER`, the base model with
something else, so `INSTANT_SUITE` (one must-change prompt whose expected answer is
`ANSWER`) passes every revision. Everything else is the real evaluator: its handler, its
registry commits, its report. It never lives in `services/`: a backend that passes every
adapter must not be one setting away in production.

    python -m tests.pipeline.instant      # the evaluator service, instant backend
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.gpu_evaluator.ports import (
    EvaluationBackend,
    Generation,
    LogLikelihood,
    Prompt,
    Target,
    per_prompt,
)
from shared.catalogue import EnvironmentSpec

ANSWER = "ok"
INSTANT_SUITE = f"""\
suite: instant
version: 1
owner: pipeline-drills
max_new_tokens: 2
gates:
  accuracy: {{threshold: 1.0}}
  no_op_rate: {{threshold: 0.0}}
items:
  - id: answer
    prompt: say {ANSWER}
    expect: {{exact: {ANSWER}}}
    must_change: true
"""


class InstantBackend:
    name = "instant"

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "note": "oracle answers; measures the pipeline only"}

    def generate(
        self, prompts: Sequence[Prompt], adapter: Target | Sequence[Target], *, max_new_tokens: int
    ) -> list[Generation]:
        return [
            Generation(text=ANSWER if target else "base", prompt_tokens=1, completion_tokens=1,
                       latency_s=0.0)
            for target in per_prompt(adapter, len(prompts))
        ]  # fmt: skip

    def loglik(
        self,
        prompts: Sequence[Prompt],
        references: Sequence[str],
        adapter: Target | Sequence[Target],
    ) -> list[LogLikelihood]:
        return [LogLikelihood(mean=-0.1, tokens=1) for _ in per_prompt(adapter, len(prompts))]


class InstantProvider:
    def backend_for(self, environment: EnvironmentSpec) -> EvaluationBackend:
        return InstantBackend()


def write_instant_suite(suites_root: Path) -> Path:
    """The suite every adapter falls back to under `suites_root`."""
    suites_root.mkdir(parents=True, exist_ok=True)
    path = suites_root / "default.yaml"
    path.write_text(INSTANT_SUITE)
    return path


def main() -> None:
    from services.gpu_evaluator.main import run

    run(wrap=lambda _provider: InstantProvider())


if __name__ == "__main__":
    main()
