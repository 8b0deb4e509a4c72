"""What every benchmark shares: the local stack's endpoints, percentiles, and the report."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.kafka.auth import Kafka, KafkaEndpoint
from shared.kafka.topics import admin_client
from tests.conftest import Infra

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"


def infra_env() -> dict[str, str]:
    """Endpoints written by `infra/up.sh` (run `make infra-up` first)."""
    path = REPO / "var" / "infra.env"
    if not path.exists():
        raise SystemExit("the local stack is not running: run `make infra-up` first")
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def infra_of(env: dict[str, str]) -> Infra:
    """The infrastructure `infra/up.sh` described in `env` (its infra.env)."""
    return Infra(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        env["DATABASE_URL"],
        env.get("KAFKA_CREDENTIALS_DIR") or None,
    )


def kafka_of(env: dict[str, str]) -> KafkaEndpoint:
    """Its brokers, as the admin: benchmarks make and delete their own topics."""
    return infra_of(env).kafka


def delete_topics(bootstrap: Kafka, topics: Sequence[str]) -> None:
    """Delete a benchmark's own topics, waiting until the broker has (an admin client that
    goes out of scope first takes the request with it)."""
    admin = admin_client(bootstrap)
    for future in admin.delete_topics(list(topics)).values():
        future.result(timeout=30)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in latencies_s]
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
        "n": len(ms),
    }


@dataclass
class Figure:
    """One measured figure next to its baseline from the same run."""

    name: str
    value: float
    baseline: float
    unit: str
    baseline_name: str
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    def row(self) -> str:
        return (
            f"| {self.name} | {self.value:,.3f} {self.unit} | {self.baseline_name}: "
            f"{self.baseline:,.3f} {self.unit} | {ratio_text(self.ratio)} |"
        )


def ratio_text(ratio: float) -> str:
    """Two decimals, or two significant digits for a ratio that would print as 0.00x."""
    return f"{ratio:.2f}x" if abs(ratio) >= 0.1 or ratio != ratio else f"{ratio:.2g}x"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds summed over every core since boot: two readings give the
    machine's busy share between them, whoever's processes used it."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def write_report(bench: str, figures: list[Figure], details: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{bench}.json"
    payload = {
        "bench": bench,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": [{**f.__dict__, "ratio": round(f.ratio, 4)} for f in figures],
        "details": details,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\n{bench}")
    print("| figure | value | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    for f in figures:
        print(f.row())
    print(f"(written to {path.relative_to(REPO)})")
    return path
