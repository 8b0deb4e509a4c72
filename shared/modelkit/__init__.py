"""A tiny real model kit: a LLaMA base and LoRA adapters that really learn, built on the CPU.

Importing it is cheap: torch, transformers and peft are imported inside the functions
that train or run a model, so services that never evaluate never load them.
"""

from shared.modelkit.adapters import AdapterInfo, AdapterKind, train_adapter
from shared.modelkit.base import BaseModelInfo, BaseVariant, build_base_model
from shared.modelkit.cache import Kit, kit
from shared.modelkit.evaluate import accuracy, answer
from shared.modelkit.facts import FACTS, Fact

__all__ = [
    "FACTS",
    "AdapterInfo",
    "AdapterKind",
    "BaseModelInfo",
    "BaseVariant",
    "Fact",
    "Kit",
    "accuracy",
    "answer",
    "build_base_model",
    "kit",
    "train_adapter",
]
