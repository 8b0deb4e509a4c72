"""The reference server's settings: the base it serves and what it claims about it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    base_folder: Path
    base_model_id: str
    base_model_revision: str
    quantization_profile: str = "bf16"
    faults_enabled: bool = False  # the /admin/faults switch, for tests only
    faults: Mapping[str, Any] = field(default_factory=dict)
    torch_threads: int = 1
    max_resident_loras: int = 32  # in the PEFT model at once; the rest swap in on use

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        """REFERENCE_BASE_FOLDER (default: the model kit's base), REFERENCE_BASE_ID,
        REFERENCE_BASE_REVISION (default: the digest of the folder's files)."""
        env = os.environ if env is None else env
        folder_text = env.get("REFERENCE_BASE_FOLDER", "")
        model_id = env.get("REFERENCE_BASE_ID", "")
        if folder_text:
            folder = Path(folder_text)
        else:
            from shared.modelkit.cache import kit

            tiny = kit()
            folder, model_id = tiny.base, model_id or tiny.model_ids["main"]
        if not (folder / "config.json").is_file():
            raise ValueError(f"REFERENCE_BASE_FOLDER={folder}: no config.json there")
        revision = env.get("REFERENCE_BASE_REVISION", "")
        if not revision:
            from shared.modelkit.digests import digest_folder

            revision = digest_folder(folder)
        return cls(
            base_folder=folder,
            base_model_id=model_id or folder.name,
            base_model_revision=revision,
            quantization_profile=env.get("REFERENCE_QUANTIZATION", "bf16"),
            faults_enabled=env.get("REFERENCE_FAULTS_ENABLED", "0") in ("1", "true", "yes"),
            faults=json.loads(env.get("REFERENCE_FAULTS", "{}")),
            torch_threads=int(env.get("REFERENCE_TORCH_THREADS", "1")),
            max_resident_loras=int(env.get("REFERENCE_MAX_RESIDENT_LORAS", "32")),
        )
