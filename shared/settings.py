"""Settings read from the environment: the one reader every settings model uses, the error
that names each bad variable, and the settings every service shares.

A settings model is a frozen pydantic-settings model whose fields name their variable
(`validation_alias`) and say what they mean (`description`; the README's configuration
table is generated from them). Nothing reads `os.environ` behind the caller's back: values
come only through `from_env(env)`, so a test passes a dict and a process passes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BeforeValidator, Field, PositiveFloat, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.kafka.auth import KafkaEndpoint, read_password

Model = TypeVar("Model", bound="EnvModel")
Location = tuple[str, ...]


class SettingsError(ValueError):
    """Variables that cannot be used, each named with its value and what was expected."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def _empty_is_none(value: object) -> object:
    return None if value == "" else value


# An empty variable that means "none" (`ACTIVATOR_ROUTING_DIR=` turns routing files off).
OrNone = BeforeValidator(_empty_is_none)


def _paths(value: object) -> object:
    """`a:b:c` as paths; empty entries are skipped."""
    return tuple(Path(p) for p in value.split(":") if p) if isinstance(value, str) else value


Paths = Annotated[tuple[Path, ...], BeforeValidator(_paths)]


class EnvModel(BaseSettings):
    """Frozen settings filled only by `read_env` (or by keyword, in tests and tools)."""

    model_config = SettingsConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, extra="ignore"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment comes through `read_env` alone


class EnvSettings(EnvModel):
    """A settings model read with `from_env(env)`; `env` defaults to the process's."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        return read_env(cls, env)


def read_env(
    model: type[Model],
    env: Mapping[str, str] | None = None,
    *,
    fixed: Mapping[str, Any] | None = None,
    prefer: Mapping[str, str] | None = None,
) -> Model:
    """`model` from the variables its fields name (nested models from the same `env`).

    `fixed` gives fields that come from the caller, not the environment; `prefer` maps a
    field to a variable read instead of its own when that one is set. Raises one
    `SettingsError` naming every variable that cannot be used.
    """
    source = os.environ if env is None else env
    values, read_from = _values(model, source, prefer or {}, ())
    try:
        return model(**values, **(fixed or {}))
    except ValidationError as exc:
        raise SettingsError([_problem(e, read_from, source) for e in exc.errors()]) from None


def _values(
    model: type[EnvModel], env: Mapping[str, str], prefer: Mapping[str, str], at: Location
) -> tuple[dict[str, Any], dict[Location, str]]:
    values: dict[str, Any] = {}
    read_from: dict[Location, str] = {}
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, EnvModel):
            values[name], inner = _values(nested, env, {}, (*at, name))
            read_from.update(inner)
            continue
        variable = prefer.get(name, "")
        if variable not in env:
            variable = field.validation_alias if isinstance(field.validation_alias, str) else ""
        if variable:
            read_from[(*at, name)] = variable
            if variable in env:
                values[name] = env[variable]
    return values, read_from


def _problem(
    error: Mapping[str, Any], read_from: Mapping[Location, str], env: Mapping[str, str]
) -> str:
    loc = tuple(str(part) for part in error["loc"])
    # The longest prefix that is a field: a field's items (a mapping's keys) report below it.
    heads = [loc[:n] for n in range(len(loc), 0, -1) if loc[:n] in read_from]
    reason = _reason(error)
    if not heads:
        return reason
    variable = read_from[heads[0]]
    return f"{variable}={env[variable]!r}: {reason}" if variable in env else f"{variable}: {reason}"


_EXPECTED = {
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "bool_parsing": "expected a boolean (1/0, true/false, yes/no)",
}


def _reason(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "literal_error":
        return f"expected {ctx['expected']}"
    if kind == "greater_than":
        return "must be positive" if ctx["gt"] == 0 else f"must be greater than {ctx['gt']}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    return str(error["msg"])


@contextmanager
def exit_on_bad_settings(process: str) -> Iterator[None]:
    """End the process with the `SettingsError`'s message (one line per variable), not a
    traceback: a service started with a bad variable says which, and stops."""
    try:
        yield
    except SettingsError as exc:
        lines = "\n".join(f"  {problem}" for problem in exc.problems)
        raise SystemExit(f"{process}: bad settings\n{lines}") from None


def read_at_start(process: str, model: type[Model], env: Mapping[str, str] | None = None) -> Model:
    """A service's own settings at its start, the kernel's checked with them, so one message
    names every bad variable; any bad one ends the process (`exit_on_bad_settings`)."""
    problems: list[str] = []
    for read in (lambda: KernelSettings.from_env(process, env), lambda: read_env(model, env)):
        try:
            read()
        except SettingsError as exc:
            problems.extend(exc.problems)
    with exit_on_bad_settings(process):
        if problems:
            raise SettingsError(problems)
    return read_env(model, env)


Port = Annotated[int, Field(ge=0, le=65535)]
Count = Annotated[int, Field(ge=1)]


class SchemaSettings(EnvSettings):
    """Where the Avro schemas the codec reads are."""

    directory: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="ADAPTERS_SCHEMAS_DIR",
        description="the Avro schemas the codec reads; unset: the repository's `schemas/`",
    )


class KernelSettings(EnvModel):
    """Where the bus and the registry are, and how this process logs.

    Built once in a service's composition root with `from_env`; tests pass a dict.
    """

    service: str
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:39092", validation_alias="KAFKA_BOOTSTRAP_SERVERS", description="brokers"
    )
    kafka_sasl_username: Annotated[str | None, OrNone] = Field(
        default=None,
        validation_alias="KAFKA_SASL_USERNAME",
        description="the Kafka principal this process authenticates as (SASL/SCRAM-SHA-512); "
        "unset: PLAINTEXT, which the brokers of `infra/` refuse",
    )
    kafka_sasl_password_file: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="KAFKA_SASL_PASSWORD_FILE",
        description="a file (mode 0600) holding that principal's password",
    )
    relay_kafka_sasl_username: Annotated[str | None, OrNone] = Field(
        default=None,
        validation_alias="RELAY_KAFKA_SASL_USERNAME",
        description="the principal the outbox relay writes the lifecycle topic as (the only "
        "one its ACLs let write it); unset: the process's own",
    )
    relay_kafka_sasl_password_file: Annotated[Path | None, OrNone] = Field(
        default=None,
        validation_alias="RELAY_KAFKA_SASL_PASSWORD_FILE",
        description="a file (mode 0600) holding the relay principal's password",
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:35432/adapters",
        validation_alias="DATABASE_URL",
        description="the registry",
    )
    trained_topic: str = Field(
        default="adapters.trained.v1",
        validation_alias="TRAINED_TOPIC",
        description="where training clusters submit adapters",
    )
    lifecycle_topic: str = Field(
        default="adapters.lifecycle.v1",
        validation_alias="LIFECYCLE_TOPIC",
        description="the audited lifecycle events",
    )
    commands_topic: str = Field(
        default="adapters.commands.v1",
        validation_alias="COMMANDS_TOPIC",
        description="operators' rollout commands",
    )
    lifecycle_partitions: Count = Field(
        default=6,
        validation_alias="LIFECYCLE_PARTITIONS",
        description="partitions of the lifecycle topic",
    )
    replication_factor: Count = Field(
        default=1, validation_alias="KAFKA_REPLICATION_FACTOR", description="`3` on a real cluster"
    )
    min_insync_replicas: Count = Field(
        default=1, validation_alias="KAFKA_MIN_INSYNC_REPLICAS", description="`2` on a real cluster"
    )
    log_format: Literal["console", "json"] = Field(
        default="console", validation_alias="LOG_FORMAT", description="`json` in production"
    )
    log_level: str = Field(
        default="info",
        validation_alias="LOG_LEVEL",
        description="`debug`, `info`, `warning` or `error`",
    )
    web_port: Port = Field(
        default=0,
        validation_alias="WEB_PORT",
        description="health and metrics on 127.0.0.1; `<SERVICE>_WEB_PORT` wins; 0: off",
    )
    shutdown_grace_s: PositiveFloat = Field(
        default=3.0,
        validation_alias="SHUTDOWN_GRACE_S",
        description="after SIGTERM the process exits within this, whatever Kafka, "
        "PostgreSQL or a replica still owe it (unfinished work is redelivered)",
    )
    run_relay: bool = Field(
        default=True,
        validation_alias="RUN_RELAY",
        description="this process may lead the outbox relay (one leader at a time)",
    )
    log_signing_key: Path = Field(
        default=Path("var/registry/log.key"),
        validation_alias="LOG_SIGNING_KEY",
        description="the lifecycle log's Ed25519 key (PEM, mode 0600; made at first start, its "
        "public half beside it as `.pub` for auditors): the relay signs every event and "
        "checkpoint with it",
    )
    log_checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias="LOG_CHECKPOINT_INTERVAL_S",
        description="at most this long between signed checkpoints of the log's chain heads "
        "(written once to `COLD_STORAGE_URL`; also after every archive)",
    )
    artifact_root: str = Field(
        default="var/artifacts", validation_alias="ARTIFACT_ROOT", description="the artifact store"
    )
    decision_public_keys: Paths = Field(
        default=(Path("var/approval/signing.key.pub"),),
        validation_alias="DECISION_PUBLIC_KEYS",
        description="colon-separated PEM public keys whose signed decisions read models "
        "believe (the approval service's; a file not made yet is skipped)",
    )
    # Consumer groups are "<prefix>-<service>": every instance of a service shares one;
    # a private test stack gets groups of its own.
    consumer_group_prefix: str = Field(
        default="adapters",
        validation_alias="CONSUMER_GROUP_PREFIX",
        description="consumer groups are `<prefix>-<service>`",
    )
    schemas: SchemaSettings = SchemaSettings()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in logging.getLevelNamesMapping():
            raise ValueError("expected a logging level: debug, info, warning, error")
        return level

    def kafka(self) -> KafkaEndpoint:
        """The brokers, as this process's own Kafka principal (reads its password file)."""
        return _endpoint(
            self.kafka_bootstrap_servers, self.kafka_sasl_username, self.kafka_sasl_password_file
        )

    def relay_kafka(self) -> KafkaEndpoint:
        """The brokers, as the outbox relay's principal (the process's own when unset)."""
        if self.relay_kafka_sasl_username is None:
            return self.kafka()
        return _endpoint(
            self.kafka_bootstrap_servers,
            self.relay_kafka_sasl_username,
            self.relay_kafka_sasl_password_file,
        )

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> KernelSettings:
        """The settings of `service`; its web port is `<SERVICE>_WEB_PORT`, else `WEB_PORT`."""
        own_port = f"{service.upper()}_WEB_PORT"
        return read_env(cls, env, fixed={"service": service}, prefer={"web_port": own_port})


def _endpoint(brokers: str, username: str | None, password_file: Path | None) -> KafkaEndpoint:
    if username is None:
        return KafkaEndpoint(brokers)
    if password_file is None:
        raise SettingsError([f"{username}: a Kafka principal needs KAFKA_SASL_PASSWORD_FILE"])
    return KafkaEndpoint(brokers, username, read_password(password_file))


__all__ = [
    "Count",
    "EnvModel",
    "EnvSettings",
    "KernelSettings",
    "OrNone",
    "Port",
    "SchemaSettings",
    "SettingsError",
    "exit_on_bad_settings",
    "read_at_start",
    "read_env",
]
