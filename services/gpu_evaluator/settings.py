"""The evaluator's settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("transformers", "vllm")


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluatorSettings:
    backend: str = "transformers"
    suites_root: Path = Path("var/suites")
    load_profiles_root: Path | None = None  # None: no load replay; latency from the suite
    # "model_id@revision" -> the base model's folder on this machine (the registry
    # describes base models but does not say where their weights live).
    base_models: Mapping[str, Path] = field(default_factory=dict)
    batch_size: int = 16
    device: str | None = None  # transformers only; default cuda when present, else cpu
    max_loaded_adapters: int = 8
    report_max_bytes: int = 64 << 20
    vllm_gpu_memory_utilization: float = 0.85
    vllm_max_model_len: int | None = None
    vllm_enforce_eager: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EvaluatorSettings:
        env = os.environ if env is None else env
        defaults = cls()
        backend = env.get("EVALUATOR_BACKEND", defaults.backend)
        if backend not in BACKENDS:
            raise ValueError(f"EVALUATOR_BACKEND={backend!r}: choose one of {BACKENDS}")
        profiles = env.get("EVALUATOR_LOAD_PROFILES_ROOT")
        max_len = env.get("EVALUATOR_VLLM_MAX_MODEL_LEN")
        return cls(
            backend=backend,
            suites_root=Path(env.get("EVALUATOR_SUITES_ROOT", str(defaults.suites_root))),
            load_profiles_root=Path(profiles) if profiles else None,
            base_models=parse_base_models(env.get("EVALUATOR_BASE_MODELS", "")),
            batch_size=int(env.get("EVALUATOR_BATCH_SIZE", defaults.batch_size)),
            device=env.get("EVALUATOR_DEVICE") or None,
            max_loaded_adapters=int(
                env.get("EVALUATOR_MAX_LOADED_ADAPTERS", defaults.max_loaded_adapters)
            ),
            report_max_bytes=int(env.get("EVALUATOR_REPORT_MAX_BYTES", defaults.report_max_bytes)),
            vllm_gpu_memory_utilization=float(
                env.get(
                    "EVALUATOR_VLLM_GPU_MEMORY_UTILIZATION", defaults.vllm_gpu_memory_utilization
                )
            ),
            vllm_max_model_len=int(max_len) if max_len else None,
            vllm_enforce_eager=env.get("EVALUATOR_VLLM_ENFORCE_EAGER", "0") in ("1", "true", "yes"),
        )


def parse_base_models(text: str) -> dict[str, Path]:
    """`id@revision=/path[,id@revision=/path...]` as a mapping; ValueError names a bad entry."""
    mapping: dict[str, Path] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        key, sep, path = entry.partition("=")
        if not sep or "@" not in key or not path:
            raise ValueError(
                f"EVALUATOR_BASE_MODELS entry {entry!r}: write MODEL_ID@REVISION=/path/to/folder"
            )
        mapping[key.strip()] = Path(path.strip())
    return mapping
