"""The activator's own settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivatorSettings:
    """How often canaries are analysed, how replicas are driven, and where routing goes.

    The kernel's settings (Kafka, PostgreSQL, topics, artifact root, logs) come from
    `KernelSettings`; these are only what the activator adds.
    """

    analysis_interval_s: float = 30.0
    http_host: str = "127.0.0.1"
    http_port: int = 8490  # GET /routing; 0: no HTTP server
    routing_dir: Path | None = Path("var/routing")
    load_attempts: int = 5
    load_backoff_s: float = 0.2
    load_backoff_max_s: float = 3.0
    target_timeout_s: float = 30.0
    serving_artifact_root: str = ""  # the artifact root as replicas see it ("" = the same path)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ActivatorSettings:
        env = os.environ if env is None else env
        d = cls()
        routing = env.get("ACTIVATOR_ROUTING_DIR", str(d.routing_dir))
        settings = cls(
            analysis_interval_s=float(
                env.get("ACTIVATOR_ANALYSIS_INTERVAL_S", d.analysis_interval_s)
            ),
            http_host=env.get("ACTIVATOR_HTTP_HOST", d.http_host),
            http_port=int(env.get("ACTIVATOR_HTTP_PORT", d.http_port)),
            routing_dir=Path(routing) if routing else None,
            load_attempts=int(env.get("ACTIVATOR_LOAD_ATTEMPTS", d.load_attempts)),
            load_backoff_s=float(env.get("ACTIVATOR_LOAD_BACKOFF_S", d.load_backoff_s)),
            load_backoff_max_s=float(env.get("ACTIVATOR_LOAD_BACKOFF_MAX_S", d.load_backoff_max_s)),
            target_timeout_s=float(env.get("ACTIVATOR_TARGET_TIMEOUT_S", d.target_timeout_s)),
            serving_artifact_root=env.get("ACTIVATOR_SERVING_ARTIFACT_ROOT", ""),
        )
        if settings.analysis_interval_s <= 0 or settings.load_attempts < 1:
            raise ValueError(
                "ACTIVATOR_ANALYSIS_INTERVAL_S must be positive, ACTIVATOR_LOAD_ATTEMPTS at least 1"
            )
        return settings
