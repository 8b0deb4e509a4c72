"""`make gpu-check`: the evaluator's vLLM path on a machine with an NVIDIA GPU.

Builds the tiny model kit, starts one vLLM engine through the evaluator's own provider
(LoRA enabled, two slots, the kit's rank), evaluates the well-trained adapter (first
revision) and the no-op adapter (against the good one as baseline) on the golden suite
under the test load profile, and prints a table. Exit 0 when it ran and the verdicts are
the expected ones, or when it skipped cleanly (no CUDA, no vllm) saying why; 1 when a
verdict is wrong; 2 when the engine or the backend failed. CI never needs it.

    .venv/bin/python infra/gpu_check.py
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SUITES = REPO / "tests" / "data" / "suites"


def skip_reason() -> str | None:
    """Why the check cannot run here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (install the project's `eval` extra)"
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__}"
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (install the project's `gpu` extra)"
    return None


def run() -> int:
    import torch

    from services.gpu_evaluator.backends import backends_from_settings
    from services.gpu_evaluator.evaluation import Plan, run_evaluation, target_metrics
    from services.gpu_evaluator.gates import decide_gate
    from services.gpu_evaluator.load import load_profile
    from services.gpu_evaluator.ports import AdapterRef
    from services.gpu_evaluator.settings import EvaluatorSettings
    from services.gpu_evaluator.suites import load_suite
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
        max_loras=2,  # candidate and baseline co-resident
        max_lora_rank=8,  # the kit's rank: no padding
    )
    settings = EvaluatorSettings(
        backend="vllm",
        base_models={key: tiny.base},
        vllm_gpu_memory_utilization=0.3,
        vllm_max_model_len=64,  # the tiny base's context
        vllm_enforce_eager=True,  # no CUDA-graph capture: a short check starts faster
    )
    started = time.perf_counter()
    try:
        backend = backends_from_settings(settings).backend_for(environment)
    except Exception:
        traceback.print_exc()
        config = json.loads((tiny.base / "config.json").read_text())
        head = config["hidden_size"] // config["num_attention_heads"]
        print(
            f"FAILED: the vLLM engine did not start for the tiny kit (head size {head}, "
            f"vocabulary {config['vocab_size']}, context {config['max_position_embeddings']}); "
            "if the error names the head size, an attention backend that takes it (e.g. "
            "VLLM_ATTENTION_BACKEND=TRITON_ATTN or FLEX_ATTENTION) may start it"
        )
        return 2
    print(f"engine: {backend.describe()} ({time.perf_counter() - started:.1f} s)")

    suite = load_suite(SUITES, "gpu-check", "staging")
    profile = load_profile(SUITES / "load", "staging")

    def ref(kind: str) -> AdapterRef:
        return AdapterRef("gpu-check", tiny.revisions[kind], tiny.adapter(kind))

    cases = [("good", None, True), ("noop", "good", False)]
    rows, wrong = [], []
    for kind, baseline_kind, should_pass in cases:
        plan = Plan(
            suite=suite,
            candidate=ref(kind),
            baseline=ref(baseline_kind) if baseline_kind else None,
            load=profile,
        )
        try:
            run_ = run_evaluation(backend, plan)
        except Exception:
            traceback.print_exc()
            print(f"FAILED: the vLLM backend raised while evaluating {kind}")
            return 2
        stats = run_.load.stats if run_.load else None
        metrics = target_metrics(suite, run_.candidate, run_.base, stats(0) if stats else None)
        base_metrics = (
            target_metrics(suite, run_.baseline, run_.base, stats(1) if stats else None)
            if run_.baseline
            else None
        )
        decision = decide_gate(metrics, base_metrics, suite.gates)
        codes = sorted({f.code for f in decision.findings})
        rows.append((kind, baseline_kind or "-", metrics, decision.passed, codes, run_.duration_s))
        if decision.passed != should_pass or (kind == "noop" and "no_op_adapter" not in codes):
            wrong.append(kind)

    print()
    print(
        "| candidate | baseline | accuracy | no_op_rate | mean_loglik | p95 ms | tokens/s "
        "| verdict | findings | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, base, m, passed, codes, seconds in rows:
        print(
            f"| {kind} | {base} | {m.get('accuracy', float('nan')):.2f} "
            f"| {m.get('no_op_rate', float('nan')):.2f} | {m.get('mean_loglik', float('nan')):.3f} "
            f"| {m.get('latency_p95_ms', float('nan')):.1f} "
            f"| {m.get('tokens_per_s', float('nan')):.1f} "
            f"| {'evaluated' if passed else 'failed'} | {','.join(codes) or '-'} "
            f"| {seconds:.1f} |"
        )
    if wrong:
        print(f"WRONG VERDICT for {', '.join(wrong)}: expected good to pass, noop to fail no-op")
        return 1
    print("ok: the vLLM backend evaluates the kit as the CPU backend does")
    return 0


def main() -> int:
    reason = skip_reason()
    if reason is not None:
        print(f"skipped: {reason}; nothing on the vLLM path was run")
        return 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
