"""What adapters are validated against: base models and the serving environments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseModelSpec:
    """A base model at one exact revision, described from its files (never its weights).

    `modules` maps every linear module's full name (e.g. `model.layers.0.self_attn.q_proj`)
    to its `(out_features, in_features)`; LoRA tensors must land on these, in these shapes.
    """

    model_id: str
    revision: str
    architecture: str
    modules: Mapping[str, tuple[int, int]]
    vocab_size: int
    hidden_size: int
    tokenizer_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profiles: tuple[str, ...] = ("bf16",)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentSpec:
    """A serving environment: what it runs and what it can load, plus its release policy."""

    name: str
    base_model_id: str
    base_model_revision: str
    tokenizer_hash: str
    chat_template_hash: str
    quantization_profile: str = "bf16"
    max_lora_rank: int = 16
    max_loras: int = 4
    supported_target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    allow_modules_to_save: bool = False
    required_approvals: int = 1
    approver_may_operate: bool = True
    canary_steps: tuple[int, ...] = (10, 50, 100)
    policy: Mapping[str, str] = field(default_factory=dict)
    # What a stock vLLM replica must prove through `GET /v1/models` before traffic moves:
    # its base card names this base at this revision (and this context length, when set).
    max_model_len: int = 0  # 0: not checked
    allow_unproven_replica_base: bool = False  # True: serve on replicas that cannot say
    # Gateways in front of the replicas (services/gateway): they take the routing document
    # and split traffic, so a canary share on stock vLLM replicas is applied by them.
    gateways: tuple[str, ...] = ()
