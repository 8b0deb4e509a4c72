"""Ingest's own settings, read from the environment in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, PositiveInt

from services.ingest.ports import Limits
from shared.settings import EnvSettings, Paths, Port

_DEFAULTS = Limits()


def _uids(value: object) -> object:
    """`1000,1001` as uids; empty entries are skipped."""
    if isinstance(value, str):
        return frozenset(int(u) for u in value.split(",") if u.strip())
    return value


class IngestSettings(EnvSettings):
    """Where trained adapters may be read from, and how much of one ingest copies.

    The kernel's settings (Kafka, PostgreSQL, topics, artifact root, logs) come from
    `KernelSettings`; these are only what ingest adds.
    """

    allowed_roots: Paths = Field(
        default=(Path("var/incoming"),),
        validation_alias="INGEST_ALLOWED_ROOTS",
        description="colon-separated folders trained adapters may be read from",
    )
    max_file_bytes: PositiveInt = Field(
        default=_DEFAULTS.max_file_bytes,
        validation_alias="INGEST_MAX_FILE_BYTES",
        description="the largest file of one adapter",
    )
    max_total_bytes: PositiveInt = Field(
        default=_DEFAULTS.max_total_bytes,
        validation_alias="INGEST_MAX_TOTAL_BYTES",
        description="the most bytes one adapter may hold",
    )
    max_files: PositiveInt = Field(
        default=_DEFAULTS.max_files,
        validation_alias="INGEST_MAX_FILES",
        description="the most entries (files and folders) one adapter's folder may hold; "
        "listing stops there",
    )

    allowed_owners: Annotated[frozenset[int], BeforeValidator(_uids)] = Field(
        default=frozenset(),
        validation_alias="INGEST_ALLOWED_OWNERS",
        description="comma-separated uids a submitted file may belong to; empty: the owner "
        "of the allowed root it is in",
    )
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias="INGEST_HTTP_HOST",
        description="where POST /submissions listens (training clusters submit there)",
    )
    http_port: Port = Field(
        default=8470,
        validation_alias="INGEST_HTTP_PORT",
        description="POST /submissions, with a trainer's bearer token; 0: no HTTP server",
    )

    @property
    def limits(self) -> Limits:
        return Limits(
            max_file_bytes=self.max_file_bytes,
            max_total_bytes=self.max_total_bytes,
            max_files=self.max_files,
            owners=self.allowed_owners,
        )
