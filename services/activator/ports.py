"""What the activator drives: serving targets (vLLM replicas, or the reference server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.contract import ServingContract


class TargetError(Exception):
    """A serving target refused or failed a request; `retryable` when trying again may help."""

    def __init__(self, url: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.retryable = retryable


class ServingTarget(Protocol):
    """One replica, spoken to through vLLM's runtime LoRA endpoints."""

    url: str

    async def describe(self) -> ServingContract | None:
        """The base, tokenizer and template the replica runs; None if it cannot say (vLLM)."""

    async def models(self) -> Mapping[str, str]:
        """Every model the replica serves now (`GET /v1/models`): name -> root path."""

    async def load(self, lora_name: str, lora_path: str) -> None:
        """Load a LoRA under `lora_name`; TargetError if refused. Success is not proof: list it."""

    async def unload(self, lora_name: str) -> None:
        """Unload a LoRA; one that is not loaded is not an error."""

    async def push_routing(self, document: Mapping[str, Any]) -> bool:
        """Hand the replica its routing; False when it takes none (a gateway routes for it)."""

    async def metrics(self) -> str:
        """The replica's Prometheus text."""
