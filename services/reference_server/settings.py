"""The reference server's settings: the base it serves and what it claims about it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from shared.settings import Count, EnvSettings


def _json_object(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON object ({exc})") from None
    if not isinstance(parsed, dict):
        raise ValueError("expected a JSON object")
    return parsed


class ServerSettings(EnvSettings):
    """The base folder served, the identity claimed for it, and the replica's bounds."""

    base_folder: Path = Field(  # unset: `_default_to_the_kit` fills it
        validation_alias="REFERENCE_BASE_FOLDER",
        description="the base model's folder; unset: the model kit's tiny base",
    )
    base_model_id: str = Field(
        default="",
        validate_default=True,
        validation_alias="REFERENCE_BASE_ID",
        description="the base's model id; empty: the kit's, else the folder's name",
    )
    base_model_revision: str = Field(
        default="",
        validate_default=True,
        validation_alias="REFERENCE_BASE_REVISION",
        description="the base's revision; empty: the digest of the folder's files",
    )
    quantization_profile: str = Field(
        default="bf16",
        validation_alias="REFERENCE_QUANTIZATION",
        description="claimed in the contract",
    )
    faults_enabled: bool = Field(
        default=False,
        validation_alias="REFERENCE_FAULTS_ENABLED",
        description="tests only: the `/admin/faults` switch",
    )
    faults: Annotated[Mapping[str, Any], BeforeValidator(_json_object)] = Field(
        default_factory=dict,
        validation_alias="REFERENCE_FAULTS",
        description="tests only: faults at start, as `POST /admin/faults` takes them (JSON)",
    )
    api_key: str = Field(
        default="",
        validation_alias="REFERENCE_API_KEY",
        description="like vLLM's --api-key: every /v1 route wants `Authorization: Bearer` it; "
        "empty: open",
    )
    runtime_lora_updating: bool = Field(
        default=True,
        validation_alias="REFERENCE_RUNTIME_LORA_UPDATING",
        description="like vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING: off, the load and unload "
        "routes are absent",
    )
    stock_vllm: bool = Field(
        default=False,
        validation_alias="REFERENCE_STOCK_VLLM",
        description="offer only what stock vLLM offers: no /info, no /v1/routing",
    )
    torch_threads: Count = Field(
        default=1, validation_alias="REFERENCE_TORCH_THREADS", description="torch's CPU threads"
    )
    max_resident_loras: Count = Field(
        default=32,
        validation_alias="REFERENCE_MAX_RESIDENT_LORAS",
        description="adapters in the PEFT model at once; the rest swap in on use",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_to_the_kit(cls, data: Any) -> Any:
        """No base folder: the model kit's tiny base, under the kit's model id."""
        if not isinstance(data, dict) or data.get("base_folder"):
            return data
        from shared.modelkit.cache import kit  # builds the kit on first use: only when needed

        tiny = kit()
        model_id = data.get("base_model_id") or tiny.model_ids["main"]
        return {**data, "base_folder": tiny.base, "base_model_id": model_id}

    @field_validator("base_folder")
    @classmethod
    def _has_config(cls, folder: Path) -> Path:
        if not (folder / "config.json").is_file():
            raise ValueError("no config.json there")
        return folder

    @field_validator("base_model_id")
    @classmethod
    def _named_after_the_folder(cls, model_id: str, info: ValidationInfo) -> str:
        folder = info.data.get("base_folder")
        return model_id or (folder.name if folder else "")

    @field_validator("base_model_revision")
    @classmethod
    def _digest_of_the_folder(cls, revision: str, info: ValidationInfo) -> str:
        folder = info.data.get("base_folder")
        if revision or folder is None:
            return revision
        from shared.modelkit.digests import digest_folder

        return digest_folder(folder)
