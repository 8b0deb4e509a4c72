"""`make gpu-check`: the evaluator on an NVIDIA GPU, through its own backend provider.

Builds the tiny model kit and evaluates its well-trained adapter (first revision) and its
no-op adapter (against the good one as baseline) on the golden suite through each backend
that can run here: the transformers backend (torch + PEFT, bf16 on CUDA) always, the vLLM
backend when vllm is importable. Every target is warmed up before latency is measured; the
load profile (`tests/data/suites/load/multi-tenant.yaml`) replays warm, then again with
other tenants' adapters beyond the environment's `max_loras`, so adapters are swapped.
Prints one table row per backend and case: device, dtype, throughput, latency p50/p95
warm and under pressure, cold load, swaps, verdict.

Exit status: 0 when every backend that ran gave the expected verdicts; 1 a wrong verdict;
2 a backend failed to start or raised; 3 nothing ran (no torch, no CUDA device: one line
on stderr says why); 4 with `--require-vllm` when vllm is not installed (the transformers
rows still print). CI never needs it.

    .venv/bin/python infra/gpu_check.py [--require-vllm]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SUITES = REPO / "tests" / "data" / "suites"
PROFILE = SUITES / "load" / "multi-tenant.yaml"
NOTHING_RAN, NO_VLLM = 3, 4

if TYPE_CHECKING:
    from services.gpu_evaluator.ports import EvaluationBackend
    from shared.catalogue import EnvironmentSpec
    from shared.modelkit.cache import Kit


def nothing_runs_because() -> str | None:
    """Why nothing of the GPU path can run here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (the project's `eval` extra)"
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__}"
    return None


@dataclass(frozen=True, slots=True)
class Row:
    backend: Mapping[str, Any]  # as the backend describes itself
    candidate: str
    baseline: str
    metrics: Mapping[str, float]
    passed: bool
    findings: tuple[str, ...]
    swaps: int | None
    seconds: float


COLUMNS = (
    ("backend", lambda r: str(r.backend.get("name", "?"))),
    ("device", lambda r: _device(r.backend)),
    ("dtype", lambda r: str(r.backend.get("dtype", "?"))),
    ("candidate", lambda r: r.candidate),
    ("baseline", lambda r: r.baseline),
    ("accuracy", lambda r: _figure(r.metrics, "accuracy", 2)),
    ("no_op_rate", lambda r: _figure(r.metrics, "no_op_rate", 2)),
    ("tokens/s", lambda r: _figure(r.metrics, "tokens_per_s", 1)),
    ("p50 ms", lambda r: _figure(r.metrics, "latency_p50_ms", 1)),
    ("p95 ms", lambda r: _figure(r.metrics, "latency_p95_ms", 1)),
    ("cold load ms", lambda r: _figure(r.metrics, "cold_load_ms", 1)),
    ("tokens/s pressed", lambda r: _figure(r.metrics, "tokens_per_s_under_pressure", 1)),
    ("p50 ms pressed", lambda r: _figure(r.metrics, "latency_p50_ms_under_pressure", 1)),
    ("p95 ms pressed", lambda r: _figure(r.metrics, "latency_p95_ms_under_pressure", 1)),
    ("swaps", lambda r: "-" if r.swaps is None else str(r.swaps)),
    ("verdict", lambda r: "evaluated" if r.passed else "failed"),
    ("findings", lambda r: ",".join(r.findings) or "-"),
    ("seconds", lambda r: f"{r.seconds:.1f}"),
)


def _device(described: Mapping[str, Any]) -> str:
    device, name = str(described.get("device", "?")), described.get("device_name")
    return f"{device} ({name})" if name and name != device else device


def _figure(metrics: Mapping[str, float], name: str, digits: int) -> str:
    value = metrics.get(name)
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, one line per backend and case."""
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(cell(r) for _, cell in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def check_backend(
    backend: EvaluationBackend, tiny: Kit, environment: EnvironmentSpec
) -> tuple[list[Row], list[str]]:
    """The kit's good adapter (first revision) and its no-op one (against the good one)
    through `backend`: the rows, and the cases whose verdict is not the expected one."""
    from services.gpu_evaluator.evaluation import Plan, run_evaluation, run_metrics
    from services.gpu_evaluator.gates import decide_gate
    from services.gpu_evaluator.load import parse_profile
    from services.gpu_evaluator.ports import AdapterRef
    from services.gpu_evaluator.suites import load_suite

    suite = load_suite(SUITES, "gpu-check", environment.name)
    profile = parse_profile(PROFILE.read_bytes(), source=PROFILE.name)

    def ref(kind: str) -> AdapterRef:
        return AdapterRef("gpu-check", tiny.revisions[kind], tiny.adapter(kind))

    rows, wrong = [], []
    for kind, baseline, should_pass in (("good", None, True), ("noop", "good", False)):
        plan = Plan(
            suite=suite,
            candidate=ref(kind),
            baseline=ref(baseline) if baseline else None,
            load=profile,
            slots=environment.max_loras,
        )
        run = run_evaluation(backend, plan)
        metrics, base_metrics = run_metrics(suite, run)
        decision = decide_gate(metrics, base_metrics, suite.gates)
        codes = tuple(sorted({f.code for f in decision.findings}))
        rows.append(
            Row(
                backend=backend.describe(),
                candidate=kind,
                baseline=baseline or "-",
                metrics=metrics,
                passed=decision.passed,
                findings=codes,
                swaps=run.pressure.swaps if run.pressure and run.pressure.counted else None,
                seconds=run.duration_s,
            )
        )
        if run.warmup is not None:
            print(
                f"{backend.name} {kind}: warmed up {', '.join(run.warmup.targets)} in "
                f"{run.warmup.calls} calls ({run.warmup.seconds:.1f} s) before measuring"
            )
        if decision.passed != should_pass or (kind == "noop" and "no_op_adapter" not in codes):
            wrong.append(f"{backend.name}/{kind}")
    return rows, wrong


def run(require_vllm: bool) -> int:
    import torch

    from services.gpu_evaluator.backends import backends_from_settings
    from services.gpu_evaluator.settings import EvaluatorSettings
    from shared.catalogue import EnvironmentSpec
    from shared.hf_folder import chat_template_hash, tokenizer_hash
    from shared.modelkit.cache import kit

    print(f"gpu: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    started = time.perf_counter()
    tiny = kit()
    print(f"kit: {tiny.root} ({time.perf_counter() - started:.1f} s)")
    key = f"{tiny.model_ids['main']}@{tiny.revisions['main']}"
    environment = EnvironmentSpec(
        name="gpu-check",
        base_model_id=tiny.model_ids["main"],
        base_model_revision=tiny.revisions["main"],
        tokenizer_hash=tokenizer_hash(tiny.base),
        chat_template_hash=chat_template_hash(tiny.base),
        max_loras=4,  # candidate, baseline and two tenants; the profile adds two beyond
        max_lora_rank=8,  # the kit's rank: no padding
    )
    settings = EvaluatorSettings(
        base_models={key: tiny.base},
        device="cuda",
        vllm_gpu_memory_utilization=0.3,
        vllm_max_model_len=64,  # the tiny base's context
        vllm_enforce_eager=True,  # no CUDA-graph capture: a short check starts faster
    )
    has_vllm = importlib.util.find_spec("vllm") is not None
    rows, wrong = [], []
    for name in ("transformers", "vllm") if has_vllm else ("transformers",):
        started = time.perf_counter()
        try:
            provider = backends_from_settings(settings.model_copy(update={"backend": name}))
            backend = provider.backend_for(environment)
        except Exception:
            traceback.print_exc()
            print(f"FAILED: the {name} backend did not start for the tiny kit{_hint(tiny, name)}")
            return 2
        print(f"{name}: {backend.describe()} ({time.perf_counter() - started:.1f} s)")
        try:
            found, bad = check_backend(backend, tiny, environment)
        except Exception:
            traceback.print_exc()
            print(f"FAILED: the {name} backend raised while evaluating the kit")
            return 2
        rows += found
        wrong += bad
        close = getattr(backend, "close", None)
        if close is not None:
            close()
        del backend, provider
        gc.collect()
        torch.cuda.empty_cache()  # the next backend gets the memory this one held
    print()
    print(table(rows))
    if not has_vllm:
        print("vllm is not installed (the project's `gpu` extra): the vLLM backend did not run")
    if wrong:
        print(f"WRONG VERDICT for {', '.join(wrong)}: expected good to pass, noop to fail no-op")
        return 1
    if not has_vllm and require_vllm:
        return NO_VLLM
    ran = "transformers and vLLM" if has_vllm else "transformers only"
    print(f"ok: {ran} on CUDA, the verdicts the CPU backend gives")
    return 0


def _hint(tiny: Kit, name: str) -> str:
    if name != "vllm":
        return ""
    import json

    config = json.loads((tiny.base / "config.json").read_text())
    head = config["hidden_size"] // config["num_attention_heads"]
    return (
        f" (head size {head}, vocabulary {config['vocab_size']}, context "
        f"{config['max_position_embeddings']}); if the error names the head size, an attention "
        "backend that takes it (e.g. VLLM_ATTENTION_BACKEND=TRITON_ATTN or FLEX_ATTENTION) "
        "may start it"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--require-vllm", action="store_true", help="exit 4 when vllm is not installed"
    )
    args = parser.parse_args(argv)
    reason = nothing_runs_because()
    if reason is not None:
        print(f"gpu-check: nothing ran: {reason}", file=sys.stderr)
        return NOTHING_RAN
    return run(args.require_vllm)


if __name__ == "__main__":
    sys.exit(main())
