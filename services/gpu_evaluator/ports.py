"""What the evaluator needs from a model runtime: generation and log-likelihood per adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


@dataclass(frozen=True, slots=True)
class AdapterCounts:
    """What a backend's adapter slots did since it was built: loads by revision, and
    evictions (an adapter unloaded to make room for another: a swap)."""

    loads: Mapping[str, int] = field(default_factory=dict)
    evictions: int = 0

    def since(self, earlier: AdapterCounts) -> AdapterCounts:
        return AdapterCounts(
            loads={
                k: n - earlier.loads.get(k, 0)
                for k, n in self.loads.items()
                if n != earlier.loads.get(k, 0)
            },
            evictions=self.evictions - earlier.evictions,
        )

    def of(self, target: AdapterRef) -> int:
        return self.loads.get(target.revision, 0)

    @property
    def total_loads(self) -> int:
        return sum(self.loads.values())


@runtime_checkable
class AdapterSlots(Protocol):
    """A backend whose resident adapters are bounded, counted and evictable (the
    transformers backend, the vLLM engine): what a cold-load figure and multi-tenant
    pressure need. A backend without it still evaluates; those figures are then absent."""

    def adapter_counts(self) -> AdapterCounts: ...

    def evict(self, target: AdapterRef) -> bool:
        """Unload `target` if resident (not counted as an eviction); whether it was."""
        ...

    def bounded_slots(self, slots: int) -> AbstractContextManager[int]:
        """At most `slots` adapters resident while inside (the environment's `max_loras`);
        yields the bound in force, which an engine built with its own may keep."""
        ...


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
