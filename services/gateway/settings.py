"""The gateway's settings: the environment it fronts, its replicas, where its routing comes
from, and the key files that authenticate clients, the activator and itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from shared.settings import EnvSettings, OrNone, Port


def _comma_separated(value: object) -> object:
    if not isinstance(value, str):
        return value
    return tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())


class GatewaySettings(EnvSettings):
    """One environment's gateway: an OpenAI-compatible front for its serving replicas."""

    environment: str = Field(
        min_length=1,
        validation_alias="GATEWAY_ENVIRONMENT",
        description="the environment whose routing document the gateway follows",
    )
    replicas: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = Field(
        validation_alias="GATEWAY_REPLICAS",
        description="the serving replicas (vLLM or the reference server), comma-separated URLs",
    )
    base_model: str = Field(
        min_length=1,
        validation_alias="GATEWAY_BASE_MODEL",
        description="the replicas' base model name: requests for it pass through unchanged",
    )
    client_keys_file: Path = Field(
        validation_alias="GATEWAY_CLIENT_KEYS_FILE",
        description="clients' API keys, one `sha256:<hex>` of a key per line (mode 0600; "
        "reread when it changes)",
    )
    admin_key_file: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="GATEWAY_ADMIN_KEY_FILE",
        description="the bearer key (mode 0600) the activator pushes routing with; "
        "unset: pushes are refused and routing is only pulled",
    )
    replica_key_file: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="GATEWAY_REPLICA_KEY_FILE",
        description="the replicas' API key (vLLM's --api-key; mode 0600), sent as a bearer "
        "token; unset: none sent",
    )
    routing_url: Annotated[str | None, OrNone] = Field(
        default=None,
        validation_alias="GATEWAY_ROUTING_URL",
        description="the activator's `GET /routing/{environment}`, pulled at start and every "
        "poll; unset: pushed routing only",
    )
    routing_poll_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias="GATEWAY_ROUTING_POLL_S",
        description="seconds between pulls of the routing document",
    )
    replica_timeout_s: float = Field(
        default=300.0,
        gt=0,
        validation_alias="GATEWAY_REPLICA_TIMEOUT_S",
        description="longest wait for a replica's next bytes (a whole answer, or the next "
        "streamed chunk)",
    )
    host: str = Field(
        default="127.0.0.1", validation_alias="GATEWAY_HOST", description="address to listen on"
    )
    port: Port = Field(default=8090, validation_alias="GATEWAY_PORT", description="port")

    @field_validator("replicas")
    @classmethod
    def _urls(cls, replicas: tuple[str, ...]) -> tuple[str, ...]:
        if not replicas:
            raise ValueError("name at least one replica URL")
        for url in replicas:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return replicas
