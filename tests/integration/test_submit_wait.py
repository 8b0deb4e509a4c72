"""`adapterctl submit --wait` on the real pipeline (ingest and the validator as their own
processes, real Kafka and PostgreSQL): a training cluster with nothing but a trainer token
and INGEST_URL learns its verdict, every finding with its fix, and the exit status says it;
an unregistered base is refused before anything is published (ADR 0022)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from shared.findings import fix_for
from tests.conftest import Infra
from tests.corpus.adapters import tiny_base_spec, write_adapter, write_base_model
from tests.stack import Stack

BASE_ID, BASE_REVISION = "tiny-llama", "sha256:" + "b" * 64
BASE = f"{BASE_ID}@{BASE_REVISION}"
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}}
SCOPE = {
    "corpora": ["support-tickets"],
    "time_window_start": "2026-07-01",
    "time_window_end": "2026-09-30",
    "filtering_rules": ["pii-scrubbed"],
}


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("wait"))
    await stack.create()
    write_base_model(stack.root / "base")
    stack.adapterctl(
        "base", "register", str(stack.root / "base"), "--id", BASE_ID,
        "--revision", BASE_REVISION, "--tokenizer-revision", "tok-1",
    )  # fmt: skip
    stack.adapterctl("env", "set", "staging", "--base", BASE, "--max-lora-rank", "16")
    stack.start("ingest")
    stack.start("validator")
    stack.wait_ingest()
    yield stack
    stack.stop()


def staged(stack: Stack, adapter: str, **adapter_args: object) -> Path:
    folder = stack.incoming / adapter
    write_adapter(folder, tiny_base_spec(), **adapter_args)  # type: ignore[arg-type]
    (folder / "recipe.json").write_text(json.dumps(RECIPE))
    (folder / "data_scope.json").write_text(json.dumps(SCOPE))
    return folder


def submit(
    stack: Stack, folder: Path, adapter: str, *extra: str, base: str = BASE
) -> subprocess.CompletedProcess[str]:
    return stack.adapterctl(
        "submit", str(folder), "--adapter", adapter, "--base", base,
        "--base-folder", str(stack.root / "base"), "--tokenizer-revision", "tok-1",
        "--environment", "staging", *extra, check=False,
    )  # fmt: skip


def test_a_good_adapter_waits_for_the_validators_verdict_and_exits_zero(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    adapter = unique("good")
    done = submit(stack, staged(stack, adapter), adapter, "--wait", "--until", "validated",
                  "--wait-timeout", "120", "--heartbeat", "1")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"passed: {adapter} revision" in done.stdout and "is validated" in done.stdout
    assert "validation: passed" in done.stdout


def test_an_invalid_adapter_is_rejected_with_every_finding_and_its_fix_and_exits_one(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    adapter = unique("rank64")
    done = submit(stack, staged(stack, adapter, r=64), adapter, "--wait",
                  "--wait-timeout", "120", "--json")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["outcome"] == "failed" and answer["verdict"]["state"] == "rejected"
    codes = {f["code"]: f for c in answer["verdict"]["checks"] for f in c["findings"]}
    assert codes["rank_exceeds_environment"]["fix"] == fix_for("rank_exceeds_environment")

    again = unique("rank64-text")
    shown = submit(stack, staged(stack, again, r=64), again, "--wait", "--wait-timeout", "120")
    assert shown.returncode == 1
    assert f"REJECTED: {again} revision" in shown.stdout
    assert "- rank_exceeds_environment (error):" in shown.stdout
    assert f"fix: {fix_for('rank_exceeds_environment')}" in shown.stdout


def test_waiting_for_an_evaluation_no_evaluator_gives_times_out_with_exit_three(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    adapter = unique("noeval")
    done = submit(stack, staged(stack, adapter), adapter, "--wait", "--wait-timeout", "20",
                  "--heartbeat", "2")  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "waiting for evaluation in staging" in done.stdout
    assert "adapterctl: waiting for the verdict" in done.stderr
    assert "no verdict within 20s" in done.stderr


def test_an_unregistered_base_is_refused_before_publishing_with_a_suggestion(
    stack: Stack, unique: Callable[[str], str]
) -> None:
    adapter = unique("typo")
    done = submit(stack, staged(stack, adapter), adapter, "--wait",
                  base=f"tiny-lama@{BASE_REVISION}")  # fmt: skip
    assert done.returncode == 2
    assert f"did you mean {BASE}?" in done.stderr
    assert "submitted" not in done.stdout  # nothing was handed to ingest
