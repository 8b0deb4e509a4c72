"""The PEFT LoRA `adapter_config.json`: what a valid one holds, and which modules it targets.

Matching follows PEFT: a list of target names selects a module whose full name equals
a name or ends in `.<name>`; a string is a regular expression that must match the whole
module name (`all-linear` selects every linear module). `rank_pattern` keys select by
a name suffix (`(^|.*\\.)<key>$`), first match wins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.validator.patterns import pattern_problem

BIAS_VALUES = ("none", "all", "lora_only")
BOOL_KEYS = ("fan_in_fan_out", "use_rslora", "use_dora", "inference_mode")
ALL_LINEAR = "all-linear"


@dataclass(frozen=True, slots=True)
class LoraConfig:
    r: int
    lora_alpha: float
    target_modules: tuple[str, ...] | str
    base_model_name_or_path: str
    exclude_modules: tuple[str, ...] | str = ()
    rank_pattern: Mapping[str, int] = field(default_factory=dict)
    modules_to_save: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> LoraConfig:
        """Build from a mapping that `config_problems` found nothing wrong with."""
        return cls(
            r=raw["r"],
            lora_alpha=float(raw["lora_alpha"]),
            target_modules=_names(raw["target_modules"]),
            base_model_name_or_path=raw["base_model_name_or_path"],
            exclude_modules=_names(raw.get("exclude_modules") or ()),
            rank_pattern=dict(raw.get("rank_pattern") or {}),
            modules_to_save=tuple(raw.get("modules_to_save") or ()),
        )

    def targets(self, module: str) -> bool:
        """Whether PEFT would wrap `module` (a full base module name) with LoRA."""
        return selects(self.target_modules, module) and not (
            self.exclude_modules and selects(self.exclude_modules, module)
        )

    def rank_for(self, module: str) -> int:
        for key, rank in self.rank_pattern.items():
            if re.match(rf"(?:^|.*\.)(?:{key})$", module):
                return rank
        return self.r

    @property
    def ranks(self) -> tuple[int, ...]:
        return (self.r, *self.rank_pattern.values())

    @property
    def target_names(self) -> tuple[str, ...]:
        """The listed target names; empty for a regular expression."""
        return self.target_modules if isinstance(self.target_modules, tuple) else ()


def config_problems(raw: object) -> list[str]:
    """Every reason `raw` is not a usable LoRA adapter config; empty when it is one."""
    if not isinstance(raw, Mapping):
        return ["the config is not a JSON object"]
    problems: list[str] = []
    if raw.get("peft_type") != "LORA":
        problems.append(f"peft_type is {raw.get('peft_type')!r}, not 'LORA'")
    if not _is_int(raw.get("r")) or raw["r"] <= 0:
        problems.append(f"r must be a positive integer, got {raw.get('r')!r}")
    alpha = raw.get("lora_alpha")
    if not _is_number(alpha):
        problems.append(f"lora_alpha must be a number, got {alpha!r}")
    problems += _selector_problems("target_modules", raw.get("target_modules"), required=True)
    problems += _selector_problems("exclude_modules", raw.get("exclude_modules"), required=False)
    name = raw.get("base_model_name_or_path")
    if not isinstance(name, str) or not name:
        problems.append("base_model_name_or_path is missing")
    if raw.get("bias", "none") not in BIAS_VALUES:
        problems.append(f"bias {raw.get('bias')!r} is not one of {', '.join(BIAS_VALUES)}")
    problems += _pattern_problems("rank_pattern", raw.get("rank_pattern"), integers=True)
    problems += _pattern_problems("alpha_pattern", raw.get("alpha_pattern"), integers=False)
    saved = raw.get("modules_to_save")
    if saved is not None and not _is_name_list(saved):
        problems.append("modules_to_save must be null or a list of module names")
    problems += [f"{key} must be true or false" for key in BOOL_KEYS if _not_bool(raw, key)]
    return problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _is_name_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _not_bool(raw: Mapping[str, Any], key: str) -> bool:
    return key in raw and not isinstance(raw[key], bool)


def _compiles(pattern: str) -> bool:
    """A pattern `rank_for` can run: valid, and matched in bounded time once wrapped."""
    wrapped = rf"(?:^|.*\.)(?:{pattern})$"
    return pattern_problem(pattern) is None and pattern_problem(wrapped) is None


def _selector_problems(key: str, value: object, *, required: bool) -> list[str]:
    if value is None:
        return [f"{key} is missing"] if required else []
    if isinstance(value, str):
        why = pattern_problem(value) if value else "is not a valid regular expression"
        return [f"{key} {why}"] if why else []
    if _is_name_list(value) and (value or not required):
        return []
    return [f"{key} must be a non-empty list of module names or a regular expression"]


def _pattern_problems(key: str, value: object, *, integers: bool) -> list[str]:
    if value is None:
        return []
    valid = _is_int if integers else _is_number
    if not isinstance(value, dict) or not all(
        _compiles(k) and valid(v) and v > 0 for k, v in value.items()
    ):
        kind = "positive integers" if integers else "positive numbers"
        return [f"{key} must map module patterns to {kind}"]
    return []


def _names(value: list[str] | str | tuple[str, ...]) -> tuple[str, ...] | str:
    return value if isinstance(value, str) else tuple(value)


def selects(selector: tuple[str, ...] | str, module: str) -> bool:
    """PEFT's rule: names match the whole name or a dotted suffix; a string is a regex."""
    if isinstance(selector, str):
        return selector == ALL_LINEAR or re.fullmatch(selector, module) is not None
    return any(module == key or module.endswith("." + key) for key in selector)
