"""Settings: every process's model reads its variables from a dict, keeps today's names and
defaults, and refuses bad values at start with one error naming each variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.activator.settings import ActivatorSettings
from services.approval.settings import ApprovalSettings
from services.archiver.settings import ArchiverSettings
from services.gpu_evaluator.settings import EvaluatorSettings
from services.ingest.settings import IngestSettings
from services.reference_server.settings import ServerSettings
from services.validator.settings import ValidatorSettings
from shared.codec import Codec
from shared.coldstore import ColdStorageSettings
from shared.schemas import CatalogueError
from shared.settings import (
    EnvSettings,
    KernelSettings,
    SettingsError,
    exit_on_bad_settings,
    read_at_start,
)


@pytest.mark.parametrize(
    ("model", "env", "field", "expected"),
    [
        (ActivatorSettings, {}, "analysis_interval_s", 30.0),
        (ActivatorSettings, {"ACTIVATOR_ANALYSIS_INTERVAL_S": "2.5"}, "analysis_interval_s", 2.5),
        (ActivatorSettings, {}, "routing_dir", Path("var/routing")),
        (ActivatorSettings, {"ACTIVATOR_ROUTING_DIR": ""}, "routing_dir", None),
        (ActivatorSettings, {"ACTIVATOR_HTTP_PORT": "0"}, "http_port", 0),
        (ApprovalSettings, {}, "http_port", 8480),
        (ApprovalSettings, {}, "signing_key", Path("var/approval/signing.key")),
        (ApprovalSettings, {"APPROVAL_MAX_REPORT_BYTES": "1024"}, "max_report_bytes", 1024),
        (ArchiverSettings, {}, "sweep_interval_s", 300.0),
        (ArchiverSettings, {"ARCHIVER_CRASH_AFTER": "verified"}, "crash_after", "verified"),
        (EvaluatorSettings, {}, "device", None),
        (EvaluatorSettings, {"EVALUATOR_DEVICE": ""}, "device", None),
        (EvaluatorSettings, {"EVALUATOR_VLLM_MAX_MODEL_LEN": ""}, "vllm_max_model_len", None),
        (EvaluatorSettings, {"EVALUATOR_VLLM_ENFORCE_EAGER": "yes"}, "vllm_enforce_eager", True),
        (EvaluatorSettings, {"EVALUATOR_VLLM_ENFORCE_EAGER": "0"}, "vllm_enforce_eager", False),
        (IngestSettings, {}, "allowed_roots", (Path("var/incoming"),)),
        (
            IngestSettings,
            {"INGEST_ALLOWED_ROOTS": "/a::/b"},
            "allowed_roots",
            (Path("/a"), Path("/b")),
        ),
        (IngestSettings, {}, "max_files", 256),
        (IngestSettings, {"INGEST_MAX_FILE_BYTES": "1048576"}, "max_file_bytes", 1 << 20),
        (ColdStorageSettings, {}, "url", "var/cold"),
        (ColdStorageSettings, {"COLD_STORAGE_S3_REGION": "eu-1"}, "s3_region", "eu-1"),
    ],
)
def test_a_service_setting_has_its_default_and_takes_its_variable(
    model: type[EnvSettings], env: dict[str, str], field: str, expected: Any
) -> None:
    assert getattr(model.from_env(env), field) == expected


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({}, "kafka_bootstrap_servers", "127.0.0.1:39092"),
        ({}, "lifecycle_partitions", 6),
        ({"LIFECYCLE_PARTITIONS": "12"}, "lifecycle_partitions", 12),
        ({}, "web_port", 0),
        ({"WEB_PORT": "9100"}, "web_port", 9100),
        ({"WEB_PORT": "9100", "INGEST_WEB_PORT": "9101"}, "web_port", 9101),
        ({"VALIDATOR_WEB_PORT": "9102"}, "web_port", 0),  # another service's port
        ({}, "run_relay", True),
        ({"RUN_RELAY": "0"}, "run_relay", False),
        ({"RUN_RELAY": "false"}, "run_relay", False),
        ({"RUN_RELAY": "no"}, "run_relay", False),
        ({"RUN_RELAY": "1"}, "run_relay", True),
        ({"LOG_FORMAT": "json"}, "log_format", "json"),
        ({"LOG_LEVEL": "WARNING"}, "log_level", "WARNING"),
        ({"CONSUMER_GROUP_PREFIX": "t1"}, "consumer_group_prefix", "t1"),
    ],
)
def test_a_kernel_setting_has_its_default_and_takes_its_variable(
    env: dict[str, str], field: str, expected: Any
) -> None:
    assert getattr(KernelSettings.from_env("ingest", env), field) == expected


@pytest.mark.parametrize(
    ("read", "env", "message"),
    [
        (ActivatorSettings.from_env, {"ACTIVATOR_ANALYSIS_INTERVAL_S": "abc"},
         "ACTIVATOR_ANALYSIS_INTERVAL_S='abc': expected a number"),
        (ActivatorSettings.from_env, {"ACTIVATOR_ANALYSIS_INTERVAL_S": "0"},
         "ACTIVATOR_ANALYSIS_INTERVAL_S='0': must be positive"),
        (ActivatorSettings.from_env, {"ACTIVATOR_LOAD_ATTEMPTS": "0"},
         "ACTIVATOR_LOAD_ATTEMPTS='0': must be at least 1"),
        (ActivatorSettings.from_env, {"ACTIVATOR_HTTP_PORT": "70000"},
         "ACTIVATOR_HTTP_PORT='70000': must be at most 65535"),
        (ApprovalSettings.from_env, {"APPROVAL_HTTP_PORT": "8480.5"},
         "APPROVAL_HTTP_PORT='8480.5': expected a whole number"),
        (ArchiverSettings.from_env, {"ARCHIVER_CRASH_AFTER": "halfway"},
         "ARCHIVER_CRASH_AFTER='halfway': use one of expired, archived, verified"),
        (ArchiverSettings.from_env, {"ARCHIVER_SWEEP_INTERVAL_S": "-1"},
         "ARCHIVER_SWEEP_INTERVAL_S='-1': must be positive"),
        (EvaluatorSettings.from_env, {"EVALUATOR_BACKEND": "tgi"},
         "EVALUATOR_BACKEND='tgi': expected 'transformers' or 'vllm'"),
        (EvaluatorSettings.from_env, {"EVALUATOR_BASE_MODELS": "tiny=/m"},
         "EVALUATOR_BASE_MODELS='tiny=/m': entry 'tiny=/m': write MODEL_ID@REVISION="),
        (EvaluatorSettings.from_env, {"EVALUATOR_VLLM_ENFORCE_EAGER": "maybe"},
         "EVALUATOR_VLLM_ENFORCE_EAGER='maybe': expected a boolean (1/0, true/false, yes/no)"),
        (IngestSettings.from_env, {"INGEST_MAX_FILES": "many"},
         "INGEST_MAX_FILES='many': expected a whole number"),
        (ServerSettings.from_env, {"REFERENCE_BASE_FOLDER": "/nowhere"},
         "REFERENCE_BASE_FOLDER='/nowhere': no config.json there"),
        (lambda env: KernelSettings.from_env("archiver", env), {"ARCHIVER_WEB_PORT": "web"},
         "ARCHIVER_WEB_PORT='web': expected a whole number"),
        (lambda env: KernelSettings.from_env("archiver", env), {"LOG_FORMAT": "text"},
         "LOG_FORMAT='text': expected 'console' or 'json'"),
        (lambda env: KernelSettings.from_env("archiver", env), {"LOG_LEVEL": "loud"},
         "LOG_LEVEL='loud': expected a logging level"),
    ],
)  # fmt: skip
def test_a_bad_variable_is_refused_with_its_name_its_value_and_what_was_expected(
    read: Any, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        read(env)
    assert refused.value.problems[0].startswith(message)


def test_one_error_lists_every_bad_variable_of_a_model() -> None:
    env = {"ACTIVATOR_ANALYSIS_INTERVAL_S": "abc", "ACTIVATOR_LOAD_ATTEMPTS": "0"}
    with pytest.raises(SettingsError) as refused:
        ActivatorSettings.from_env(env)
    assert [p.split("=")[0] for p in refused.value.problems] == [
        "ACTIVATOR_ANALYSIS_INTERVAL_S",
        "ACTIVATOR_LOAD_ATTEMPTS",
    ]
    assert isinstance(refused.value, ValueError)


def test_a_nested_model_reports_its_own_variable() -> None:
    with pytest.raises(SettingsError, match="ARCHIVER_SWEEP_INTERVAL_S"):
        ArchiverSettings.from_env({"ARCHIVER_SWEEP_INTERVAL_S": "x", "COLD_STORAGE_URL": "/c"})
    assert ArchiverSettings.from_env({"COLD_STORAGE_URL": "/c"}).cold_storage.url == "/c"


def test_a_service_started_with_bad_settings_exits_naming_its_own_and_the_kernels() -> None:
    env = {"ACTIVATOR_LOAD_ATTEMPTS": "x", "LIFECYCLE_PARTITIONS": "0"}
    with pytest.raises(SystemExit) as ended:
        read_at_start("activator", ActivatorSettings, env)
    assert str(ended.value.code) == (
        "activator: bad settings\n"
        "  LIFECYCLE_PARTITIONS='0': must be at least 1\n"
        "  ACTIVATOR_LOAD_ATTEMPTS='x': expected a whole number"
    )


def test_a_service_started_with_good_settings_gets_its_own() -> None:
    settings = read_at_start("validator", ValidatorSettings, {"VALIDATOR_WEB_PORT": "9000"})
    assert settings == ValidatorSettings()


def test_a_bad_setting_outside_a_service_ends_the_process_with_the_message() -> None:
    bad_relay = pytest.raises(SystemExit, match="relay: bad settings\n  RUN_RELAY='x'")
    with bad_relay, exit_on_bad_settings("relay"):
        KernelSettings.from_env("relay", {"RUN_RELAY": "x"})


def test_settings_read_only_the_env_they_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVATOR_HTTP_PORT", "1234")
    monkeypatch.setenv("WEB_PORT", "1235")
    assert ActivatorSettings.from_env({}).http_port == 8490
    assert KernelSettings.from_env("activator", {}).web_port == 0
    assert ActivatorSettings().http_port == 8490
    assert ActivatorSettings.from_env().http_port == 1234  # no env: the process's


def test_settings_are_frozen() -> None:
    settings = IngestSettings.from_env({})
    with pytest.raises(ValueError, match="frozen"):
        settings.max_files = 3  # type: ignore[misc]


def test_the_codec_reads_the_schemas_directory_its_settings_name(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        Codec.from_settings(
            KernelSettings.from_env("x", {"ADAPTERS_SCHEMAS_DIR": str(tmp_path / "none")}).schemas
        )
    assert len(Codec.from_settings(KernelSettings.from_env("x", {}).schemas).catalogue) > 0


def test_ingest_limits_come_from_its_settings() -> None:
    limits = IngestSettings.from_env(
        {"INGEST_MAX_TOTAL_BYTES": "10", "INGEST_MAX_FILES": "2"}
    ).limits
    assert (limits.max_total_bytes, limits.max_files) == (10, 2)
