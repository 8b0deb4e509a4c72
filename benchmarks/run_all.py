"""`make bench`: run every benchmark, then gather their figures into results.json and
RESULTS.md (each figure next to the baseline measured in the same run, and the ratio)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from benchmarks.common import OUT, REPO, ratio_text

BENCHES = (
    "bench_registry",
    "bench_ingest",
    "bench_evaluator",
    "bench_evaluator_pressure",
    "bench_activator",
    "bench_pipeline",
    "bench_audit",
    "bench_throughput",
    "bench_gateway",
)


def main() -> int:
    """Run every bench, then gather; `--collect` only gathers what benchmarks/out/ holds
    (after re-running one bench by hand; each row keeps the time it was measured)."""
    failed = []
    for bench in () if "--collect" in sys.argv[1:] else BENCHES:
        print(f"\n### {bench}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{bench}"], cwd=REPO)
        print(f"({bench}: {time.monotonic() - started:.0f}s)", flush=True)
        if result.returncode != 0:
            failed.append(bench)
    reports = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    (REPO / "benchmarks" / "results.json").write_text(json.dumps(reports, indent=2) + "\n")
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench`. Each figure is a ratio against a baseline measured in the "
        "same run on the same machine.",
        "",
        "| bench | figure | value | baseline (same run) | ratio | measured |",
        "|---|---|---|---|---|---|",
    ]
    for report in reports:
        for f in report["figures"]:
            lines.append(
                f"| {report['bench']} | {f['name']} | {f['value']:,.3f} {f['unit']} | "
                f"{f['baseline_name']}: {f['baseline']:,.3f} {f['unit']} | "
                f"{ratio_text(f['ratio'])} | {report['measured_at']} |"
            )
    (REPO / "benchmarks" / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote benchmarks/results.json and benchmarks/RESULTS.md; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
