"""How the evaluator is wired: settings from the environment, base model folders checked
against the environment's contract, backends built once and reused, reports canonical."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from services.gpu_evaluator.backends import BaseModelFolders, CachedBackends
from services.gpu_evaluator.ports import BackendConfigError
from services.gpu_evaluator.report import report_bytes
from services.gpu_evaluator.settings import EvaluatorSettings, parse_base_models
from shared.catalogue import EnvironmentSpec
from shared.hf_folder import chat_template_hash, tokenizer_hash
from tests.corpus.adapters import write_base_model


def environment(folder: Path, **changes: Any) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=changes.pop("name", "staging"),
        base_model_id="tiny",
        base_model_revision="r1",
        tokenizer_hash=changes.pop("tokenizer_hash", tokenizer_hash(folder)),
        chat_template_hash=chat_template_hash(folder),
        **changes,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base")
    write_base_model(folder)
    return folder


def test_settings_come_from_the_environment_in_one_place() -> None:
    settings = EvaluatorSettings.from_env(
        {
            "EVALUATOR_BACKEND": "vllm",
            "EVALUATOR_SUITES_ROOT": "/suites",
            "EVALUATOR_LOAD_PROFILES_ROOT": "/load",
            "EVALUATOR_BASE_MODELS": "org/tiny@sha256:ab=/models/tiny, big@r2=/models/big",
            "EVALUATOR_BATCH_SIZE": "4",
            "EVALUATOR_VLLM_MAX_MODEL_LEN": "2048",
        }
    )
    assert settings.backend == "vllm" and settings.batch_size == 4
    assert settings.suites_root == Path("/suites")
    assert settings.load_profiles_root == Path("/load")
    assert settings.base_models == {
        "org/tiny@sha256:ab": Path("/models/tiny"),
        "big@r2": Path("/models/big"),
    }
    assert settings.vllm_max_model_len == 2048
    assert EvaluatorSettings.from_env({}).backend == "transformers"
    assert EvaluatorSettings.from_env({}).load_profiles_root is None


def test_an_unknown_backend_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="transformers"):
        EvaluatorSettings.from_env({"EVALUATOR_BACKEND": "tgi"})


@pytest.mark.parametrize("entry", ["tiny=/m", "tiny@r1", "tiny@r1="])
def test_a_base_model_entry_must_name_model_revision_and_folder(entry: str) -> None:
    with pytest.raises(ValueError, match="MODEL_ID@REVISION=/path"):
        parse_base_models(entry)


def test_the_base_folder_must_serve_the_environments_tokenizer_and_template(
    base: Path,
) -> None:
    folders = BaseModelFolders({"tiny@r1": base})
    assert folders.folder_for(environment(base)) == base
    with pytest.raises(BackendConfigError, match="does not match environment staging"):
        folders.folder_for(environment(base, tokenizer_hash="sha256:other"))
    with pytest.raises(BackendConfigError, match="EVALUATOR_BASE_MODELS"):
        BaseModelFolders({}).folder_for(environment(base))


class Closing:
    def __init__(self, label: str) -> None:
        self.name, self.closed = label, False

    def close(self) -> None:
        self.closed = True


def test_backends_are_built_once_per_key_and_the_oldest_is_closed_beyond_the_limit(
    base: Path,
) -> None:
    built: list[Closing] = []

    def build(folder: Path, env: EnvironmentSpec) -> Any:
        built.append(Closing(env.name))
        return built[-1]

    backends = CachedBackends(
        BaseModelFolders({"tiny@r1": base}), build, lambda f, e: e.max_loras, keep=1
    )
    first = backends.backend_for(environment(base, max_loras=2))
    assert backends.backend_for(environment(base, name="prod", max_loras=2)) is first
    backends.backend_for(environment(base, max_loras=4))
    assert len(built) == 2 and built[0].closed and not built[1].closed


def test_a_report_is_canonical_json_with_unmeasured_numbers_as_null() -> None:
    data = report_bytes({"b": [math.nan, 1.25], "a": {"z": math.inf, "y": "x"}})
    assert json.loads(data) == {"a": {"y": "x", "z": None}, "b": [None, 1.25]}
    assert data == report_bytes({"a": {"y": "x", "z": math.inf}, "b": [math.nan, 1.25]})
    assert data.index(b'"a"') < data.index(b'"b"')
