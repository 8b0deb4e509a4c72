"""Fault injection for tests: fail a revision's requests, slow them, or fail its loads.

Rules name a lora (`adapter@digest`) or a whole adapter. A load fault is "error" (answer
500) or "silent" (answer 200 and load nothing, as vLLM once did for a missing path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _matches(rules: Mapping[str, Any], lora: str) -> Any:
    return rules.get(lora, rules.get(lora.split("@", 1)[0], rules.get("*")))


@dataclass(frozen=True, slots=True)
class Faults:
    requests: frozenset[str] = frozenset()
    delays_s: Mapping[str, float] = field(default_factory=dict)
    loads: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Faults:
        loads = {str(k): str(v) for k, v in body.get("loads", {}).items()}
        if any(mode not in ("error", "silent") for mode in loads.values()):
            raise ValueError('a load fault is "error" or "silent"')
        return cls(
            requests=frozenset(map(str, body.get("requests", []))),
            delays_s={str(k): float(v) for k, v in body.get("delays_s", {}).items()},
            loads=loads,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": sorted(self.requests),
            "delays_s": dict(self.delays_s),
            "loads": dict(self.loads),
        }

    def request_fails(self, lora: str) -> bool:
        return bool(_matches(dict.fromkeys(self.requests, True), lora))

    def delay_s(self, lora: str) -> float:
        return float(_matches(self.delays_s, lora) or 0.0)

    def load_fault(self, lora: str) -> str | None:
        found = _matches(self.loads, lora)
        return str(found) if found else None
