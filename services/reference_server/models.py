"""vLLM's model cards: `GET /v1/models` lists the base and every loaded LoRA (its base as
`parent`), and `GET /v1/models/{id}` gives one, as OpenAI's API does."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from services.reference_server.bodies import error_response, missing_model
from services.reference_server.engine import Engine
from services.reference_server.settings import ServerSettings


def model_routes(settings: ServerSettings, engine: Engine, *, one_by_id: bool) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": describe_models(settings, engine)}

    if not one_by_id:
        return router

    @router.get("/v1/models/{model:path}", response_model=None)
    async def model_card(model: str) -> Response:
        found = [card for card in describe_models(settings, engine) if card["id"] == model]
        if not found:
            return error_response(404, missing_model(model), "NotFoundError", "model")
        return JSONResponse(found[0])

    return router


def describe_models(settings: ServerSettings, engine: Engine) -> list[dict[str, Any]]:
    """The base's card first (with the context length), then each LoRA's."""
    now = int(time.time())
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": now,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": False,  # refused here: the engine gives no log probabilities
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    models: list[tuple[str, str, str | None, int | None]] = [
        (settings.base_model_id, str(settings.base_folder), None, engine.max_model_len)
    ]
    models += [
        (n, path, settings.base_model_id, None) for n, path in sorted(engine.loaded().items())
    ]
    return [
        {
            "id": model,
            "object": "model",
            "created": now,
            "owned_by": "vllm",
            "root": root,
            "parent": parent,
            "max_model_len": length,
            "permission": [permission],
        }
        for model, root, parent, length in models
    ]
