"""What the evaluator needs from a model runtime: generation and log-likelihood per adapter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shared.catalogue import EnvironmentSpec


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


Prompt = tuple[Message, ...]  # a conversation, rendered by the base model's chat template


@dataclass(frozen=True, slots=True)
class AdapterRef:
    """A revision's loadable folder. Backends name adapters by `revision` (a content
    digest), so a changed adapter is never served from a same-name cache entry."""

    adapter: str
    revision: str
    path: Path

    @property
    def digest_hex(self) -> str:
        return self.revision.removeprefix("sha256:")


Target = AdapterRef | None  # None: the base model alone


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float  # wall time of the call that produced it (a batch finishes together)


@dataclass(frozen=True, slots=True)
class LogLikelihood:
    mean: float  # mean log-probability per reference token (end-of-turn token included)
    tokens: int


class BackendUnavailable(Exception):
    """The runtime cannot serve now (a remote fleet down): retry later, judge nothing."""


class BackendError(Exception):
    """The runtime could not evaluate this revision: out of memory, weights that do not
    load, a file that is missing. The revision's verdict (it fails evaluation), unlike an
    exception from our own code, which propagates and leaves the revision retryable.
    `__cause__` is what the runtime raised."""


class BackendConfigError(Exception):
    """The evaluator cannot evaluate for this environment (no base model folder, or one
    that does not match the environment's contract): an operator must fix the setup."""


class EvaluationBackend(Protocol):
    """One base model in one runtime, built once and reused for every event.

    `adapter` is one target for every prompt, or one per prompt: a mixed batch, the way a
    serving engine sees co-resident adapters. Implementations are thread-safe.
    """

    name: str

    def describe(self) -> dict[str, Any]: ...

    def generate(
        self,
        prompts: Sequence[Prompt],
        adapter: Target | Sequence[Target],
        *,
        max_new_tokens: int,
    ) -> list[Generation]: ...

    def loglik(
        self,
        prompts: Sequence[Prompt],
        references: Sequence[str],
        adapter: Target | Sequence[Target],
    ) -> list[LogLikelihood]: ...


class BackendProvider(Protocol):
    """The backend for an environment's base model and serving limits, cached per process."""

    def backend_for(self, environment: EnvironmentSpec) -> EvaluationBackend: ...


def per_prompt(adapter: Target | Sequence[Target], count: int) -> list[Target]:
    """One target per prompt, whichever form the caller passed."""
    if adapter is None or isinstance(adapter, AdapterRef):
        return [adapter] * count
    targets = list(adapter)
    if len(targets) != count:
        raise ValueError(f"{len(targets)} adapters for {count} prompts")
    return targets


def user_prompt(text: str) -> Prompt:
    return (Message(role="user", content=text),)


def render(tokenizer: Any, prompt: Prompt) -> str:
    """The conversation in the base model's own chat template, ready for the answer."""
    messages = [{"role": m.role, "content": m.content} for m in prompt]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
