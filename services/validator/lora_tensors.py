"""An adapter's tensors read from its headers, and the checks of them against the base.

PEFT saves `base_model.model.<module>.lora_A.weight` (rank x in) and `.lora_B.weight`
(out x rank), sometimes with the adapter name infixed (`.lora_A.default.weight`), and
full copies of `modules_to_save` as `base_model.model.<module>.weight`. A name whose
module is not in the base loads nowhere: vLLM and PEFT then serve the base unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.validator.findings import error, warning
from services.validator.peft_config import LoraConfig, selects
from shared.catalogue import BaseModelSpec
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.safetensors_header import TensorInfo

PREFIX = "base_model.model."
LORA_NAME = re.compile(r"^(?P<module>.+?)\.lora_(?P<side>[AB])(?:\.[\w-]+)?\.weight$")
SAVED_NAME = re.compile(r"^(?P<module>.+?)(?:\.modules_to_save(?:\.[\w-]+)?)?\.(?:weight|bias)$")
LAYER_INDEX = re.compile(r"(?<=\.)\d+(?=\.)")
KNOWN_EXTRAS = {
    "lora_magnitude_vector": "a DoRA magnitude: vLLM serves no DoRA",
    "lora_embedding_": "an embedding LoRA",
    ".bias": "a LoRA bias",
}
EXTRA_FIXES = {
    "lora_magnitude_vector": "train with use_dora=false, or merge the adapter",
    "lora_embedding_": "leave embeddings out of target_modules",
    ".bias": "train with bias='none'",
}
EMBEDDING_NAMES = ("embed_tokens", "lm_head", "wte", "embed_out", "word_embeddings")


@dataclass(frozen=True, slots=True)
class LoraPair:
    module: str  # the base module's full name
    a: TensorInfo | None
    b: TensorInfo | None

    @property
    def rank(self) -> int | None:
        if self.a is not None and len(self.a.shape) == 2:
            return self.a.shape[0]
        if self.b is not None and len(self.b.shape) == 2:
            return self.b.shape[1]
        return None


@dataclass(frozen=True, slots=True)
class AdapterTensors:
    pairs: Mapping[str, LoraPair]
    saved_modules: Mapping[str, tuple[int, ...]]  # full copies of modules_to_save
    unprefixed: tuple[str, ...]  # LoRA names missing the `base_model.model.` prefix
    unexpected: tuple[str, ...]

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(r for p in self.pairs.values() if (r := p.rank) is not None)


def classify_tensors(
    tensors: Mapping[str, TensorInfo], modules_to_save: Iterable[str] = ()
) -> AdapterTensors:
    saveable = (*EMBEDDING_NAMES, *modules_to_save)
    sides: dict[str, dict[str, TensorInfo]] = {}
    saved: dict[str, tuple[int, ...]] = {}
    unprefixed: list[str] = []
    unexpected: list[str] = []
    for name, info in sorted(tensors.items()):
        body = name.removeprefix(PREFIX)
        lora, kept = LORA_NAME.match(body), SAVED_NAME.match(body)
        if lora and body != name:
            sides.setdefault(lora["module"], {})[lora["side"]] = info
        elif lora:
            unprefixed.append(name)
        elif kept and body != name and kept["module"].rsplit(".", 1)[-1] in saveable:
            saved[kept["module"]] = info.shape
        else:
            unexpected.append(name)
    pairs = {m: LoraPair(module=m, a=s.get("A"), b=s.get("B")) for m, s in sides.items()}
    return AdapterTensors(
        pairs=pairs,
        saved_modules=saved,
        unprefixed=tuple(unprefixed),
        unexpected=tuple(unexpected),
    )


def check_modules_exist(tensors: AdapterTensors, base: BaseModelSpec) -> list[Finding]:
    """Every LoRA pair must land on a module of the base; else it silently changes nothing."""
    unprefixed = [Problem(name, PREFIX + name, name) for name in tensors.unprefixed]
    findings = grouped(
        FindingCode.UNKNOWN_TARGET_MODULE,
        unprefixed,
        lambda label, p: f"LoRA tensor {label} lacks the {PREFIX!r} prefix PEFT loads by",
    )
    problems = [
        Problem(m, _closest(m, base) or "a module of the base", m)
        for m in sorted(set(tensors.pairs) - set(base.modules))
    ]
    return findings + grouped(
        FindingCode.UNKNOWN_TARGET_MODULE,
        problems,
        lambda label, p: (
            f"LoRA module {label} is not in base {base.model_id}; "
            f"it would load and change nothing (base has e.g. {p.expected})"
        ),
    )


def check_config_targets_exist(config: LoraConfig, base: BaseModelSpec) -> list[Finding]:
    """Each target in the config must select some base module (PEFT refuses otherwise)."""
    selectors: list[tuple[str, ...] | str] = [(name,) for name in config.target_names]
    return [
        error(
            FindingCode.UNKNOWN_TARGET_MODULE,
            f"target_modules entry {_show(selector)!r} selects no module of base {base.model_id}",
            target=_show(selector),
            expected="a module of the base",
        )
        for selector in selectors or [config.target_modules]
        if not any(selects(selector, module) for module in base.modules)
    ]


def check_pairs_complete(tensors: AdapterTensors) -> list[Finding]:
    problems = [
        Problem(p.module, "lora_A and lora_B", "lora_A" if p.a else "lora_B")
        for p in tensors.pairs.values()
        if p.a is None or p.b is None
    ]
    return grouped(
        FindingCode.LORA_PAIR_INCOMPLETE,
        problems,
        lambda label, p: f"{label} has {p.found} without its partner",
    )


def check_shapes(tensors: AdapterTensors, base: BaseModelSpec) -> list[Finding]:
    """lora_A is (r, in) and lora_B (out, r) of its base module, with one r for both."""
    problems = []
    for pair in tensors.pairs.values():
        if pair.a is None or pair.b is None or pair.module not in base.modules:
            continue
        out_features, in_features = base.modules[pair.module]
        expected_a, expected_b = (pair.rank, in_features), (out_features, pair.rank)
        if pair.a.shape != expected_a or pair.b.shape != expected_b:
            problems.append(
                Problem(
                    pair.module,
                    f"A={list(expected_a)} B={list(expected_b)}",
                    f"A={list(pair.a.shape)} B={list(pair.b.shape)}",
                )
            )
    return grouped(
        FindingCode.LORA_SHAPE_MISMATCH,
        problems,
        lambda label, p: f"{label} needs lora {p.expected} (base out x in), found {p.found}",
    )


def check_ranks(tensors: AdapterTensors, config: LoraConfig) -> list[Finding]:
    """The tensors' rank must be the config's `r` (or its `rank_pattern` entry)."""
    problems = [
        Problem(p.module, str(config.rank_for(p.module)), str(p.rank))
        for p in tensors.pairs.values()
        if p.rank is not None and p.rank != config.rank_for(p.module)
    ]
    return grouped(
        FindingCode.RANK_MISMATCH,
        problems,
        lambda label, p: f"{label} has rank {p.found} but the config says {p.expected}",
    )


def check_tensors_targeted(tensors: AdapterTensors, config: LoraConfig) -> list[Finding]:
    """Tensors on modules the config does not target are dropped by PEFT on load."""
    expected = _show(config.target_modules)
    problems = [Problem(m, expected, m) for m in sorted(tensors.pairs) if not config.targets(m)]
    return grouped(
        FindingCode.TARGET_MODULES_MISMATCH,
        problems,
        lambda label, p: (
            f"{label} has LoRA tensors but target_modules ({p.expected}) "
            "does not select it; PEFT would drop them"
        ),
    )


def check_targets_have_tensors(
    tensors: AdapterTensors, config: LoraConfig, base: BaseModelSpec
) -> list[Finding]:
    missing = [m for m in sorted(base.modules) if config.targets(m) and m not in tensors.pairs]
    if not missing or not tensors.pairs:  # no tensors at all is `no_weights`
        return []
    return [
        warning(
            FindingCode.TARGET_WITHOUT_TENSORS,
            f"{len(missing)} targeted base modules have no LoRA tensors, e.g. {missing[0]!r}",
            expected="tensors for every targeted module",
            found=", ".join(missing[:5]),
            count=len(missing),
        )
    ]


def check_no_unexpected(tensors: AdapterTensors) -> list[Finding]:
    """Unexpected tensors; those of one known cause (DoRA magnitudes, embedding LoRA, LoRA
    biases) in one finding that lists the modules, the rest one finding per layer pattern."""
    by_cause: dict[str, list[str]] = {}
    others: list[Problem] = []
    for name in tensors.unexpected:
        marker = next((m for m in KNOWN_EXTRAS if m in name), None)
        if marker is None:
            others.append(Problem(name, "LoRA A/B or modules_to_save weight", name))
        else:
            by_cause.setdefault(marker, []).append(name)
    findings = [_cause_finding(marker, names) for marker, names in by_cause.items()]
    return findings + grouped(
        FindingCode.UNEXPECTED_TENSOR,
        others,
        lambda label, p: (
            f"tensor {label} is neither a LoRA A/B matrix nor a modules_to_save "
            f"weight{_hint(p.module)}"
        ),
    )


def _cause_finding(marker: str, names: list[str]) -> Finding:
    modules = sorted({_module_of(name, marker) for name in names})
    listed = ", ".join(modules[:10]) + (
        f" and {len(modules) - 10} more" if len(modules) > 10 else ""
    )
    return error(
        FindingCode.UNEXPECTED_TENSOR,
        f"{len(names)} tensor(s) on {len(modules)} module(s) ({listed}) are "
        f"{KNOWN_EXTRAS[marker]}; {EXTRA_FIXES[marker]}",
        cause=marker.strip("._"),
        count=len(names),
        modules=",".join(modules[:10]),
        expected="LoRA A/B or modules_to_save weight",
        found=names[0],
    )


def _module_of(name: str, marker: str) -> str:
    body = name.removeprefix(PREFIX)
    return body.split(marker, 1)[0].rstrip(".") or body


def _hint(name: str) -> str:
    for marker, hint in KNOWN_EXTRAS.items():
        if marker in name:
            return f" ({hint})"
    return ""


@dataclass(frozen=True, slots=True)
class Problem:
    module: str
    expected: str
    found: str


def grouped(
    code: FindingCode, problems: Iterable[Problem], describe: Callable[[str, Problem], str]
) -> list[Finding]:
    """One finding per layer pattern: 32 layers with one defect give one finding, not 32."""
    groups: dict[tuple[str, str, str], list[Problem]] = {}
    for p in problems:
        key = (_layers(p.module), _layers(p.expected), _layers(p.found))
        groups.setdefault(key, []).append(p)
    findings = []
    for (pattern, expected, found), members in groups.items():
        single = len(members) == 1
        label = repr(members[0].module) if single else f"{pattern!r} ({len(members)} modules)"
        findings.append(
            error(
                code,
                describe(label, members[0]),
                module=members[0].module if single else pattern,
                count=len(members),
                expected=members[0].expected if single else expected,
                found=members[0].found if single else found,
            )
        )
    return findings


def _layers(name: str) -> str:
    return LAYER_INDEX.sub("*", name)


def _closest(module: str, base: BaseModelSpec) -> str | None:
    short = module.rsplit(".", 1)[-1]
    return next((m for m in sorted(base.modules) if m.endswith("." + short)), None)


def _show(selector: tuple[str, ...] | str) -> str:
    return selector if isinstance(selector, str) else ",".join(selector)
