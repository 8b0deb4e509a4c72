"""The activator's own settings, read from the environment in one place."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    ValidationInfo,
    field_validator,
)

from shared.settings import Count, EnvSettings, OrNone, Port


class MetricsSourceKind(StrEnum):
    replicas = "replicas"
    gateway = "gateway"
    prometheus = "prometheus"


def _by_environment(value: object) -> object:
    """`URL` (every environment) or `ENV=URL,ENV=URL` as {environment or `*`: URL}."""
    if not isinstance(value, str):
        return value
    urls: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in value.split(","))):
        environment, sep, url = entry.partition("=")
        if sep and "://" not in environment:
            urls[environment.strip()] = url.strip()
        else:
            urls["*"] = entry
    return urls


class ActivatorSettings(EnvSettings):
    """How often canaries are analysed, how replicas are driven, and where routing goes.

    The kernel's settings (Kafka, PostgreSQL, topics, artifact root, logs) come from
    `KernelSettings`; these are only what the activator adds.
    """

    analysis_interval_s: PositiveFloat = Field(
        default=30.0,
        validation_alias="ACTIVATOR_ANALYSIS_INTERVAL_S",
        description="seconds between canary analyses",
    )
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias="ACTIVATOR_HTTP_HOST",
        description="where GET /routing listens",
    )
    http_port: Port = Field(
        default=8490,
        validation_alias="ACTIVATOR_HTTP_PORT",
        description="GET /routing; 0: no HTTP server",
    )
    routing_dir: Annotated[Path | None, OrNone] = Field(
        default=Path("var/routing"),
        validation_alias="ACTIVATOR_ROUTING_DIR",
        description="routing files for the replicas' proxies; empty: none written",
    )
    load_attempts: Count = Field(
        default=5, validation_alias="ACTIVATOR_LOAD_ATTEMPTS", description="tries per replica load"
    )
    load_backoff_s: NonNegativeFloat = Field(
        default=0.2, validation_alias="ACTIVATOR_LOAD_BACKOFF_S", description="first retry delay"
    )
    load_backoff_max_s: NonNegativeFloat = Field(
        default=3.0,
        validation_alias="ACTIVATOR_LOAD_BACKOFF_MAX_S",
        description="longest retry delay",
    )
    target_timeout_s: PositiveFloat = Field(
        default=30.0,
        validation_alias="ACTIVATOR_TARGET_TIMEOUT_S",
        description="seconds a replica has to answer",
    )
    replica_keys_dir: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="ACTIVATOR_REPLICA_KEYS_DIR",
        description="a folder of ENVIRONMENT.key files (mode 600): the API key its replicas "
        "were started with (vLLM --api-key); empty: none sent",
    )
    gateway_keys_dir: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="ACTIVATOR_GATEWAY_KEYS_DIR",
        description="a folder of ENVIRONMENT.key files (mode 600): the admin key the "
        "environment's gateways take routing with (GATEWAY_ADMIN_KEY_FILE); empty: none sent",
    )
    stall_after_s: PositiveFloat = Field(
        default=300.0,
        validation_alias="ACTIVATOR_STALL_AFTER_S",
        description="seconds a rollout waits on unreachable replicas before a RolloutStalled "
        "is recorded (it keeps waiting)",
    )
    serving_artifact_root: str = Field(
        default="",
        validation_alias="ACTIVATOR_SERVING_ARTIFACT_ROOT",
        description="the artifact root as replicas mount it; empty: the same path",
    )
    metrics_source: MetricsSourceKind = Field(
        default=MetricsSourceKind.replicas,
        validation_alias="ACTIVATOR_METRICS_SOURCE",
        description="where canary analysis reads per-revision counters: replicas (each "
        "replica's lora_* series), gateway (each of the environment's gateways' "
        "inference_model_* series) or prometheus",
    )
    prometheus_url: str = Field(
        default="",
        validate_default=True,
        validation_alias="ACTIVATOR_PROMETHEUS_URL",
        description="the Prometheus server canary analysis queries (source prometheus); it "
        "must scrape the gateways with an `environment` target label",
    )
    gateway_metrics_url: Annotated[dict[str, str], BeforeValidator(_by_environment)] = Field(
        default_factory=dict,
        validation_alias="ACTIVATOR_GATEWAY_METRICS_URL",
        description="source gateway: the /metrics page to read instead of each catalogued "
        "gateway's (adapterctl env set --gateway): one URL, or ENV=URL,ENV=URL",
    )

    @field_validator("prometheus_url")
    @classmethod
    def _given_for_its_source(cls, value: str, info: ValidationInfo) -> str:
        """Prometheus' address is required when it is the source: no silent empty reads."""
        if not value and info.data.get("metrics_source") == MetricsSourceKind.prometheus:
            raise ValueError("required when ACTIVATOR_METRICS_SOURCE=prometheus")
        return value
