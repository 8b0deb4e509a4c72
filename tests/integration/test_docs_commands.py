"""The README's and docs/*.md's shell blocks, run as a reader would run them.

Every unmarked ```bash / ```sh / ```console block runs in bash (`set -euo pipefail`), in
document order, against a private stack (its own database and topics, ingest running) and
in a scratch folder that holds what the docs assume a reader has (`reader_folder`). A
block that exits non-zero fails the test; a block the test cannot run must say why with
`<!-- docs-test: skip (why) -->` on the line before its fence (tests/doc_blocks.py).
Variables a block sets (`BASE=$(...)`) carry over to the document's later blocks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from shared.events import RevisionRegistered
from shared.kafka import acl
from shared.signing import load_or_create_signer
from tests.conftest import REPO, Infra
from tests.corpus.adapters import tiny_base_spec, write_adapter, write_base_model
from tests.doc_blocks import Block, blocks_of, documents
from tests.eventually import eventually
from tests.stack import Stack, answering

VENV_BIN = Path(sys.executable).parent
SUBMITTED = re.compile(r"adapterctl submit .*?--adapter (\S+)", re.S)
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}}
SCOPE = {
    "corpora": ["support-tickets"],
    "time_window_start": "2026-07-01",
    "time_window_end": "2026-09-30",
    "filtering_rules": ["pii-scrubbed"],
}


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A private pipeline whose ingest reads trained adapters from the readers' folders."""
    stack = Stack(infra, tmp_path_factory.mktemp("docs"))
    await stack.create()
    write_base_model(stack.root / "catalogue-base")
    # What the operator pages assume exists: a `production` environment on a base.
    stack.adapterctl(
        "base", "register", str(stack.root / "catalogue-base"),
        "--id", "fleet-base", "--revision", "r1", "--tokenizer-revision", "tok-1",
    )  # fmt: skip
    stack.adapterctl("env", "set", "production", "--base", "fleet-base@r1")
    stack.start("ingest", INGEST_ALLOWED_ROOTS=str(stack.root))
    stack.wait_ingest()  # `adapterctl submit` hands the event to its API
    # `env replicas|analysis` and `retention` are commands these carry out and answer.
    stack.start("activator", ACTIVATOR_ROUTING_DIR="")
    stack.start("archiver", COLD_STORAGE_URL=str(stack.root / "cold"))
    for service in ("activator", "archiver"):
        url = stack.env()[f"{service.upper()}_URL"] + "/healthz"
        eventually(partial(answering, url), timeout=120, message=f"{service} never answered")
    yield stack
    stack.stop()


def reader_folder(root: Path) -> Path:
    """What a reader of the docs has at hand, in a fresh folder:

    `./models/tiny-llama` (a base model folder), `./out/run-42` (a trained adapter with its
    recipe and data scope), `./merged/support-summarizer-2026-12` (a merged model folder),
    `var/approval/signing.key.pub` (the approval service's public key) and `.venv/` (the
    project's virtual environment).
    """
    root.mkdir(parents=True)
    write_base_model(root / "models" / "tiny-llama")
    write_base_model(root / "merged" / "support-summarizer-2026-12")
    adapter = root / "out" / "run-42"
    write_adapter(adapter, tiny_base_spec())
    (adapter / "recipe.json").write_text(json.dumps(RECIPE))
    (adapter / "data_scope.json").write_text(json.dumps(SCOPE))
    load_or_create_signer(root / "var" / "approval" / "signing.key")
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def run_block(block: Block, folder: Path, env: dict[str, str]) -> None:
    """Run `block` in bash; the variables it leaves set go to the next block."""
    state = folder / ".docs-test-state.sh"
    script = "\n".join(
        [
            "set -euo pipefail",
            f"[ -f {state} ] && source {state}",
            "set -a",  # what the block assigns is exported, so `export -p` keeps it
            block.script,
            f"export -p > {state}",
        ]
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, (
        f"{block.where}: exit {result.returncode}\n{block.script}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_documented_commands_run(document: Path, stack: Stack) -> None:
    folder = reader_folder(stack.root / f"reader-{document.stem}")
    # As a reader who sourced var/infra.env: Kafka's admin (the README's Credentials section
    # shows how each role uses its own password instead).
    env = {**stack.env(acl.ADMIN), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    for block in blocks_of(document):
        if block.skip_reason is not None:
            continue
        run_block(block, folder, env)
        # Hold the pipeline where the next block assumes it: what was submitted is registered.
        for adapter in SUBMITTED.findall(block.script):
            stack.wait_for(
                lambda events: any(isinstance(e, RevisionRegistered) for e in events),
                adapter=adapter,
            )
