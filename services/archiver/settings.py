"""The archiver's own settings, read from the environment in one place."""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from services.archiver.faults import CRASH_POINTS
from shared.coldstore import ColdStorageSettings
from shared.settings import EnvSettings, Port


class ArchiverSettings(EnvSettings):
    """Where archive records go, how often retention sweeps, and (tests only) a crash point."""

    cold_storage: ColdStorageSettings = ColdStorageSettings()
    sweep_interval_s: PositiveFloat = Field(
        default=300.0,
        validation_alias="ARCHIVER_SWEEP_INTERVAL_S",
        description="seconds between retention sweeps",
    )
    scrub_interval_s: PositiveFloat = Field(
        default=60.0,
        validation_alias="ARCHIVER_SCRUB_INTERVAL_S",
        description="seconds between scrub ticks (each re-hashes part of the artifact store)",
    )
    scrub_bytes_per_tick: PositiveInt = Field(
        default=1 << 30,
        validation_alias="ARCHIVER_SCRUB_BYTES_PER_TICK",
        description="bytes a scrub tick re-hashes at most (at least one revision): bounds "
        "the disk load; a pass covers the whole store",
    )
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias="ARCHIVER_HTTP_HOST",
        description="where the read API (retention, holds, answers) listens",
    )
    http_port: Port = Field(
        default=8491,
        validation_alias="ARCHIVER_HTTP_PORT",
        description="the read API adapterctl asks; 0: no HTTP server",
    )
    crash_after: str = Field(
        default="",
        validation_alias="ARCHIVER_CRASH_AFTER",
        description=f"tests only: exit right after this step ({', '.join(CRASH_POINTS)})",
    )

    @field_validator("crash_after")
    @classmethod
    def _known_step(cls, point: str) -> str:
        if point and point not in CRASH_POINTS:
            raise ValueError(f"use one of {', '.join(CRASH_POINTS)}")
        return point
