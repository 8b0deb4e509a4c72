"""The README's "Try your own adapter", followed as a newcomer follows it: its shell blocks,
extracted from the README and run in order in one shell, from a fresh `make stack-up` to a
second revision canaried under the stack's traffic and active in production."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

from tests.conftest import REPO, Infra
from tests.doc_blocks import blocks_of

SECTION = "## Try your own adapter"


def section_blocks() -> list[str]:
    """The section's shell blocks, in order (each carries the marker naming this test)."""
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    first = text[:start].count("\n") + 1
    last = text[: end if end != -1 else len(text)].count("\n") + 1
    found = [b for b in blocks_of(REPO / "README.md") if first <= b.line <= last]
    assert found, f"no shell block under {SECTION!r}"
    for block in found:
        assert block.skip_reason and "test_try_your_own" in (block.skip_reason or ""), block.where
    return [block.script for block in found]


def test_the_section_lists_its_commands_in_order() -> None:
    scripts = section_blocks()
    joined = "\n".join(scripts)
    order = ["make stack-up", "adapterctl submit", "approve production", "--watch", "stack-down"]
    positions = [joined.index(step) for step in order]
    assert positions == sorted(positions), order


def test_a_newcomer_takes_their_own_adapter_to_a_canaried_active_revision(infra: Infra) -> None:
    adapter = f"my-adapter-{uuid.uuid4().hex[:6]}"
    script = "set -euo pipefail\n" + "\n".join(section_blocks())
    env = {**infra.env(), "ADAPTER": adapter, "PATH": os.environ["PATH"]}
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        subprocess.run(["make", "stack-down"], cwd=REPO, env=env, capture_output=True, check=False)
    wall = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    print(f"README 'Try your own adapter' took {wall:.0f} s")
    # What the log says happened, read as an auditor reads it.
    listed = subprocess.run(
        [str(REPO / ".venv" / "bin" / "adapterctl"), "history", adapter, "--json"],
        cwd=REPO,
        env=infra.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    history = json.loads(listed.stdout)
    production = [
        (e["event"], e["revision"]) for e in history["events"] if e["environment"] == "production"
    ]
    kinds = [kind for kind, _ in production]
    assert "CanaryStarted" in kinds and "CanaryExpanded" in kinds, kinds
    second = next(rev for kind, rev in production if kind == "CanaryStarted")
    assert ("RevisionActivated", second) in production, production
