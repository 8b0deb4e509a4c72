"""The corpus's bad `adapterctl` invocations, run as the installed console script against
a private stack: each exits 2 (usage or setup error) or 1 (refused) with a message on
stderr that says what was wrong and what to do, and prints nothing on stdout."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.corpus.bad_inputs import Entry, load
from tests.corpus.bad_inputs.commands import prepare_command
from tests.integration.bad_inputs.conftest import BASE_ID, BASE_REVISION, ENVIRONMENT
from tests.stack import Stack

ENTRIES = load("cli")
ADAPTERCTL = Path(sys.executable).parent / "adapterctl"


@pytest.fixture(scope="module")
def results(pipeline: Stack) -> dict[str, subprocess.CompletedProcess[str]]:
    places = {
        "base_folder": str(pipeline.root / "base"),
        "base": f"{BASE_ID}@{BASE_REVISION}",
        "environment": ENVIRONMENT,
    }

    def run(entry: Entry) -> subprocess.CompletedProcess[str]:
        command = prepare_command(entry.input, pipeline.root / "cli" / entry.id, places)
        return subprocess.run(
            [str(ADAPTERCTL), *command.args],
            cwd=REPO,
            env=pipeline.env(**command.env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:  # each run is mostly interpreter start-up
        return dict(zip((e.id for e in ENTRIES), pool.map(run, ENTRIES), strict=True))


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_each_bad_invocation_exits_with_its_status_and_says_what_to_do(
    results: dict[str, subprocess.CompletedProcess[str]], entry: Entry
) -> None:
    result = results[entry.id]
    said = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == entry.expect["exit"], said
    assert entry.expect["stderr"] in result.stderr, said
    assert result.stderr.splitlines()[-1].startswith("adapterctl"), said
    assert result.stdout == "", said
