"""The evaluator's settings, read from the environment in one place."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PositiveInt

from shared.settings import Count, EnvSettings, OrNone

Backend = Literal["transformers", "vllm"]


def parse_base_models(text: str) -> dict[str, Path]:
    """`id@revision=/path[,id@revision=/path...]` as a mapping; ValueError names a bad entry."""
    mapping: dict[str, Path] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        key, sep, path = entry.partition("=")
        if not sep or "@" not in key or not path:
            raise ValueError(f"entry {entry!r}: write MODEL_ID@REVISION=/path/to/folder")
        mapping[key.strip()] = Path(path.strip())
    return mapping


def _base_models(value: object) -> object:
    return parse_base_models(value) if isinstance(value, str) else value


class EvaluatorSettings(EnvSettings):
    """Which engine evaluates, where suites and base models are, and the engine's bounds."""

    backend: Backend = Field(
        default="transformers",
        validation_alias="EVALUATOR_BACKEND",
        description="`transformers` (torch + PEFT, CPU or GPU) or `vllm` (GPU)",
    )
    suites_root: Path = Field(
        default=Path("var/suites"),
        validation_alias="EVALUATOR_SUITES_ROOT",
        description="golden suites",
    )
    load_profiles_root: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="EVALUATOR_LOAD_PROFILES_ROOT",
        description="`<environment>.yaml`, else `default.yaml`; unset: no load replay",
    )
    # The registry describes base models but does not say where their weights live.
    base_models: Annotated[Mapping[str, Path], BeforeValidator(_base_models)] = Field(
        default_factory=dict,
        validation_alias="EVALUATOR_BASE_MODELS",
        description="`MODEL_ID@REVISION=/folder[,...]`: where each registered base lives here",
    )
    batch_size: Count = Field(
        default=16,
        validation_alias="EVALUATOR_BATCH_SIZE",
        description="prompts per batch (transformers)",
    )
    device: Annotated[str | None, OrNone] = Field(
        default=None,
        validation_alias="EVALUATOR_DEVICE",
        description="transformers only; unset: cuda if present, else cpu",
    )
    max_loaded_adapters: Count = Field(
        default=8,
        validation_alias="EVALUATOR_MAX_LOADED_ADAPTERS",
        description="resident PEFT adapters, least recently used evicted",
    )
    report_max_bytes: PositiveInt = Field(
        default=64 << 20,
        validation_alias="EVALUATOR_REPORT_MAX_BYTES",
        description="bound on one report",
    )
    vllm_gpu_memory_utilization: float = Field(
        default=0.85,
        gt=0,
        le=1,
        validation_alias="EVALUATOR_VLLM_GPU_MEMORY_UTILIZATION",
        description="vLLM engine: share of GPU memory",
    )
    vllm_max_model_len: Annotated[int | None, OrNone] = Field(
        default=None,
        validation_alias="EVALUATOR_VLLM_MAX_MODEL_LEN",
        description="vLLM engine; unset: the model's",
    )
    vllm_enforce_eager: bool = Field(
        default=False,
        validation_alias="EVALUATOR_VLLM_ENFORCE_EAGER",
        description="vLLM engine: skip CUDA-graph capture",
    )
