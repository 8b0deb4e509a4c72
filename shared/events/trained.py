"""The inbound fact a training cluster publishes on `adapters.trained.v1`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from shared.events.common import BaseModelRef


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingRecipe:
    """Enough to reproduce the run: seed, datasets, hyperparameters, its own evaluation."""

    seed: int
    dataset_ids: list[str]
    hyperparameters: dict[str, str] = field(default_factory=dict)
    evaluation_summary: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DataScope:
    """The training data at a high level, for privacy review; never the data itself."""

    corpora: list[str]
    time_window_start: str
    time_window_end: str
    filtering_rules: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterTrained:
    SCHEMA: ClassVar[str] = "adapters.trained.v1.AdapterTrained"

    event_id: str
    adapter: str
    submitter: str
    submitted_at: datetime
    base_model: BaseModelRef
    tokenizer_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str
    target_environments: list[str] = field(default_factory=list)
    recipe: TrainingRecipe
    data_scope: DataScope
    artifact_uri: str
    description: str = ""
