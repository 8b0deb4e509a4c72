"""Writes docs/screenshots/approval-pending.png (the pending list) and
approval-evidence.png (a candidate's evidence beside the serving revision): the browser test
that takes them, run with APPROVAL_SCREENSHOTS pointing there. Needs what that test needs
(Debian's chromium, the project's Kafka and PostgreSQL).

    .venv/bin/python -m tests.browser.screenshots
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST = (
    "tests/browser/test_approval_evidence_page.py::"
    "test_the_candidate_stands_beside_the_serving_revision_with_its_differences_marked"
)
NAMES = ("approval-pending.png", "approval-evidence.png")


def main() -> int:
    target = ROOT / "docs" / "screenshots"
    env = os.environ | {"APPROVAL_SCREENSHOTS": str(target)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "browser",
        "-p",
        "no:cacheprovider",
        TEST,
    ]
    started = time.time()
    code = subprocess.call(command, cwd=ROOT, env=env)
    missing = [
        name
        for name in NAMES
        if not (target / name).is_file() or (target / name).stat().st_mtime < started
    ]
    if code == 0 and missing:  # a skipped test (no chromium) passes and writes nothing
        print(f"screenshots not written: {', '.join(missing)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
