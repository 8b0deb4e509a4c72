"""`make gpu-check` never says green when it ran nothing: without a CUDA device it exits
non-zero with one line saying "nothing ran", and its table names the backend, device and
dtype of every row. (The check itself runs only on a GPU, never in CI.)"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import gpu_check
from infra.gpu_check import NOTHING_RAN, Row, nothing_runs_because, table

REPO = Path(__file__).resolve().parents[2]


def test_without_a_cuda_device_nothing_runs_and_it_fails_in_one_line() -> None:
    # Hiding every device makes torch see none, on this machine or on one with a GPU.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(REPO / "infra" / "gpu_check.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == NOTHING_RAN != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("gpu-check: nothing ran: no CUDA device visible to torch ")


def test_without_torch_the_reason_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        gpu_check.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "torch" else real(name, *args),
    )
    assert nothing_runs_because() == "torch is not installed (the project's `eval` extra)"


def test_every_row_of_the_table_names_its_backend_device_and_dtype() -> None:
    rows = [
        Row(
            backend={"name": "transformers", "device": "cuda", "device_name": "NVIDIA H200",
                     "dtype": "bfloat16"},
            candidate="good",
            baseline="-",
            metrics={"accuracy": 1.0, "latency_p95_ms": 612.25, "cold_load_ms": 88.0,
                     "latency_p95_ms_under_pressure": 950.0},
            passed=True,
            findings=(),
            swaps=6,
            seconds=12.34,
        ),
        Row(
            backend={"name": "vllm", "device": "cuda", "dtype": "bfloat16"},
            candidate="noop",
            baseline="good",
            metrics={"accuracy": 0.0},
            passed=False,
            findings=("metric_regressed", "no_op_adapter"),
            swaps=None,
            seconds=3.0,
        ),
    ]  # fmt: skip
    header, rule, *lines = table(rows).splitlines()
    names = [c.strip() for c in header.strip("|").split("|")]
    assert names[:3] == ["backend", "device", "dtype"]
    assert {"tokens/s", "p50 ms", "p95 ms", "cold load ms", "p95 ms pressed", "swaps"} <= set(names)
    cells = [dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True))
             for line in lines]  # fmt: skip
    assert [(c["backend"], c["device"], c["dtype"]) for c in cells] == [
        ("transformers", "cuda (NVIDIA H200)", "bfloat16"),
        ("vllm", "cuda", "bfloat16"),
    ]
    assert (cells[0]["p95 ms"], cells[0]["p95 ms pressed"], cells[0]["swaps"]) == (
        "612.2",
        "950.0",
        "6",
    )
    assert (cells[1]["verdict"], cells[1]["findings"], cells[1]["p95 ms"]) == (
        "failed",
        "metric_regressed,no_op_adapter",
        "-",
    )
    assert rule.count("---") == len(names)
