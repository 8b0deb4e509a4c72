"""What adapterctl adds to the kernel's settings: where the services' read APIs answer."""

from __future__ import annotations

from pydantic import Field

from shared.settings import EnvSettings


class CtlSettings(EnvSettings):
    """The services adapterctl asks (it reads their state through their HTTP APIs)."""

    ingest_url: str = Field(
        default="http://127.0.0.1:8470",
        validation_alias="INGEST_URL",
        description="ingest's HTTP API, where `adapterctl submit` hands in a trained adapter",
    )
    activator_url: str = Field(
        default="http://127.0.0.1:8490",
        validation_alias="ACTIVATOR_URL",
        description="the activator's HTTP API: answers to commands, replicas, canaries",
    )
    archiver_url: str = Field(
        default="http://127.0.0.1:8491",
        validation_alias="ARCHIVER_URL",
        description="the archiver's HTTP API: retention policies, legal holds, answers",
    )
    token: str = Field(
        default="",
        validation_alias="ADAPTERCTL_TOKEN",
        description=(
            "a principal's bearer token: every change a service makes only for a proven "
            "principal (submit, promote|expand|rollback|abort, env replicas|analysis, "
            "retention set|hold|release)"
        ),
    )
    log_public_keys: str = Field(
        default="",
        validation_alias="LOG_PUBLIC_KEYS",
        description="colon-separated PEM public keys of the lifecycle log (the relay's "
        "`LOG_SIGNING_KEY` + `.pub`): `audit verify` checks every event's signature and "
        "every checkpoint against them (or --log-key)",
    )
    log_checkpoints: str = Field(
        default="var/cold",
        validation_alias="LOG_CHECKPOINTS",
        description="the cold storage directory the relays checkpoint the log into (their "
        "`COLD_STORAGE_URL`): `audit verify` reads `checkpoints/<topic>/` there (or "
        "--checkpoints)",
    )
