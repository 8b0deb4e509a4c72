"""The approval service's own settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalSettings:
    """Where the HTTP server listens and where the signing key lives.

    The kernel's settings (Kafka, PostgreSQL, topics, artifact root, logs) come from
    `KernelSettings`; these are only what the approval service adds.
    """

    http_host: str = "127.0.0.1"
    http_port: int = 8480
    signing_key: Path = Path("var/approval/signing.key")
    max_report_bytes: int = 8 << 20

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApprovalSettings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            http_host=env.get("APPROVAL_HTTP_HOST", defaults.http_host),
            http_port=int(env.get("APPROVAL_HTTP_PORT", defaults.http_port)),
            signing_key=Path(env.get("APPROVAL_SIGNING_KEY", str(defaults.signing_key))),
            max_report_bytes=int(env.get("APPROVAL_MAX_REPORT_BYTES", defaults.max_report_bytes)),
        )
