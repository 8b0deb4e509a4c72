"""The archiver's own settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.archiver.faults import CRASH_POINTS
from shared.coldstore import ColdStorageSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiverSettings:
    cold_storage: ColdStorageSettings = field(default_factory=ColdStorageSettings)
    sweep_interval_s: float = 300.0
    crash_after: str = ""  # fault injection for tests: exit right after this step

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArchiverSettings:
        env = os.environ if env is None else env
        crash_after = env.get("ARCHIVER_CRASH_AFTER", "")
        if crash_after and crash_after not in CRASH_POINTS:
            raise ValueError(
                f"ARCHIVER_CRASH_AFTER={crash_after!r}: use one of {', '.join(CRASH_POINTS)}"
            )
        interval = float(env.get("ARCHIVER_SWEEP_INTERVAL_S", "300"))
        if interval <= 0:
            raise ValueError("ARCHIVER_SWEEP_INTERVAL_S must be positive")
        return cls(
            cold_storage=ColdStorageSettings.from_env(env),
            sweep_interval_s=interval,
            crash_after=crash_after,
        )
