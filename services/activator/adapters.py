"""The vLLM serving target over HTTP: runtime LoRA loading, model listing, routing, metrics.

Written against vLLM's own HTTP layer (`make conformance` drives it): its runtime LoRA routes
exist only when the replica runs with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` (otherwise
FastAPI answers `{"detail": "Not Found"}`), `--api-key` makes every `/v1` route answer 401
without `Authorization: Bearer <key>`, and an unknown model is a 404 `NotFoundError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from services.activator.ports import BaseCard, TargetError
from shared.contract import ServingContract
from shared.kafka.auth import read_password

ALREADY_LOADED = "already been loaded"
ROUTE_ABSENT = {"detail": "Not Found"}  # FastAPI's answer for a path no route serves
RUNTIME_LORA_OFF = (
    "the replica has no runtime LoRA API ({call} answered 404 Not Found): start vLLM with "
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True so adapters can be loaded without a restart"
)
REFUSED_KEY = (
    "{call} answered {status}: the replica refused our credentials; it runs with --api-key, "
    "so put that key in the environment's key file (ACTIVATOR_REPLICA_KEYS_DIR/<environment>.key)"
)
ApiKey = Callable[[], str | None]


def key_file(keys_dir: Path | None, environment: str) -> ApiKey:
    """The environment's replica API key, read from `keys_dir/<environment>.key` at each call
    (a rotated key takes effect at once); None when there is no such file. A key file others
    may read is refused, like every secret here."""

    if Path(environment).name != environment:  # a name is never a path
        raise ValueError(f"environment name {environment!r} is not a plain name")

    def read() -> str | None:
        if keys_dir is None or not (path := keys_dir / f"{environment}.key").exists():
            return None
        return read_password(path).strip() or None

    return read


def _route_absent(response: httpx.Response) -> bool:
    if response.status_code != 404:
        return False
    try:
        return bool(response.json() == ROUTE_ABSENT)
    except ValueError:
        return False


STALE_CONNECTION = (httpx.ReadError, httpx.RemoteProtocolError)


class VllmTarget:
    """One replica. `POST /v1/load_lora_adapter` and friends are vLLM's runtime LoRA API
    (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`); `GET /info` and `POST /v1/routing` exist on
    the reference server only, and their absence is how a plain vLLM replica is recognised."""

    def __init__(
        self, url: str, client: httpx.AsyncClient, *, api_key: str | ApiKey | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client
        self._api_key: ApiKey = api_key if callable(api_key) else (lambda: api_key)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        key = self._api_key()  # read per call: a rotated key file takes effect at once
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            try:
                response = await self._client.request(
                    method, self.url + path, headers=headers, **kwargs
                )
            except STALE_CONNECTION:
                # uvicorn closes the connection after vLLM answers through an exception
                # handler; the pooled connection is dead before the next request reaches
                # the replica. Every call here is idempotent, so one fresh try is safe.
                response = await self._client.request(
                    method, self.url + path, headers=headers, **kwargs
                )
        except httpx.TransportError as exc:
            raise TargetError(
                self.url, f"{method} {path}: {exc!r}", retryable=True, unreachable=True
            ) from exc
        if response.status_code in (401, 403):
            call = f"{method} {path}"
            raise TargetError(
                self.url, REFUSED_KEY.format(call=call, status=response.status_code),
                retryable=False,
            )  # fmt: skip
        return response

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

    async def _cards(self) -> list[Mapping[str, Any]]:
        response = await self._call("GET", "/v1/models")
        self._check(response)
        data = response.json().get("data", [])
        return [card for card in data if isinstance(card, Mapping) and "id" in card]

    async def models(self) -> Mapping[str, str]:
        return {str(m["id"]): str(m.get("root") or "") for m in await self._cards()}

    async def base(self) -> BaseCard | None:
        for card in await self._cards():
            if not card.get("parent"):  # vLLM gives every LoRA card its base as `parent`
                length = card.get("max_model_len")
                return BaseCard(
                    id=str(card["id"]),
                    root=str(card.get("root") or ""),
                    max_model_len=int(length) if isinstance(length, int) else None,
                )
        return None

    async def probe(self, lora_name: str) -> int:
        body = {"model": lora_name, "prompt": "ping", "max_tokens": 1}
        response = await self._call("POST", "/v1/completions", json=body)
        if response.status_code == 404:  # vLLM: "The model `x` does not exist."
            raise TargetError(self.url, self._detail(response), retryable=True)
        return response.status_code

    async def load(self, lora_name: str, lora_path: str) -> None:
        body = {"lora_name": lora_name, "lora_path": lora_path}
        response = await self._call("POST", "/v1/load_lora_adapter", json=body)
        if response.status_code == 400 and ALREADY_LOADED in response.text:
            return  # the same digest-qualified name, hence the same weights
        if _route_absent(response):
            call = "POST /v1/load_lora_adapter"
            raise TargetError(self.url, RUNTIME_LORA_OFF.format(call=call), retryable=False)
        self._check(response)

    async def unload(self, lora_name: str) -> None:
        body = {"lora_name": lora_name}
        response = await self._call("POST", "/v1/unload_lora_adapter", json=body)
        if _route_absent(response):
            call = "POST /v1/unload_lora_adapter"
            raise TargetError(self.url, RUNTIME_LORA_OFF.format(call=call), retryable=False)
        if response.status_code in (400, 404):
            return  # not loaded: nothing to do
        self._check(response)

    async def routes_traffic(self) -> bool:
        response = await self._call("GET", "/v1/routing")
        if response.status_code in (404, 405):
            return False
        self._check(response)
        return True

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
