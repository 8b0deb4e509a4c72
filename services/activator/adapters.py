"""The vLLM serving target over HTTP: runtime LoRA loading, model listing, routing, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from services.activator.ports import TargetError
from shared.contract import ServingContract

ALREADY_LOADED = "already been loaded"


class VllmTarget:
    """One replica. `POST /v1/load_lora_adapter` and friends are vLLM's runtime LoRA API
    (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`); `GET /info` and `POST /v1/routing` exist on
    the reference server only, and their absence is how a plain vLLM replica is recognised."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self._client = client

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, self.url + path, **kwargs)
        except httpx.TransportError as exc:
            raise TargetError(
                self.url, f"{method} {path}: {exc!r}", retryable=True, unreachable=True
            ) from exc

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        return (
            f"{response.request.method} {response.url.path} answered {response.status_code}: "
            + (response.text[:300].strip() or "(no body)")
        )

    def _check(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        retryable = response.status_code >= 500 or response.status_code == 429
        raise TargetError(self.url, self._detail(response), retryable=retryable)

    async def describe(self) -> ServingContract | None:
        response = await self._call("GET", "/info")
        if response.status_code == 404:
            return None
        self._check(response)
        body = response.json()
        return ServingContract(
            base_model_id=str(body.get("base_model_id", "")),
            base_model_revision=str(body.get("base_model_revision", "")),
            tokenizer_hash=str(body.get("tokenizer_hash", "")),
            chat_template_hash=str(body.get("chat_template_hash", "")),
            quantization_profile=str(body.get("quantization_profile", "")),
        )

    async def models(self) -> Mapping[str, str]:
        response = await self._call("GET", "/v1/models")
        self._check(response)
        return {str(m["id"]): str(m.get("root") or "") for m in response.json().get("data", [])}

    async def load(self, lora_name: str, lora_path: str) -> None:
        body = {"lora_name": lora_name, "lora_path": lora_path}
        response = await self._call("POST", "/v1/load_lora_adapter", json=body)
        if response.status_code == 400 and ALREADY_LOADED in response.text:
            return  # the same digest-qualified name, hence the same weights
        self._check(response)

    async def unload(self, lora_name: str) -> None:
        body = {"lora_name": lora_name}
        response = await self._call("POST", "/v1/unload_lora_adapter", json=body)
        if response.status_code in (400, 404):
            return  # not loaded: nothing to do
        self._check(response)

    async def push_routing(self, document: Mapping[str, Any]) -> bool:
        response = await self._call("POST", "/v1/routing", json=dict(document))
        if response.status_code in (404, 405):
            return False
        self._check(response)
        return True

    async def metrics(self) -> str:
        response = await self._call("GET", "/metrics")
        self._check(response)
        return response.text
