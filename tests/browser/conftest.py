"""Browser tests drive the approval page in Debian's headless Chromium (`apt-get install
chromium`); without it they are skipped under the `browser` marker, which says why."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a web page in Debian's chromium (/usr/bin/chromium)"
    )
