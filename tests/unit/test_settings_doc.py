"""The README's configuration table is generated from the settings models and kept current."""

from __future__ import annotations

import importlib

import pytest
from pydantic import Field

from infra.settings_doc import COMMAND, PROCESSES, README, table
from shared.settings import EnvModel, EnvSettings
from shared.settings_doc import BEGIN, END, block_of, settings_table, with_block

REPO = README.parent


class _Nested(EnvSettings):
    url: str = Field(default="", validation_alias="DEMO_URL", description="where | it goes")


class _Demo(EnvSettings):
    size: int = Field(default=8 << 20, validation_alias="DEMO_SIZE", description="bytes")
    ratio: float = Field(default=0.5, validation_alias="DEMO_RATIO", description="a share")
    flag: bool = Field(default=True, validation_alias="DEMO_FLAG", description="on or off")
    folder: str | None = Field(default=None, validation_alias="DEMO_FOLDER", description="x")
    nested: _Nested = _Nested()
    internal: int = 3  # no variable: not configuration


def test_the_readme_configuration_table_is_the_generated_one() -> None:
    assert block_of(README.read_text()) == table(), f"the table is stale: run `{COMMAND}`"


def test_every_variable_appears_once_in_the_table() -> None:
    rows = [line.split("|")[1].strip() for line in table().splitlines()[2:]]
    assert len(rows) == len(set(rows))
    assert {
        "`WEB_PORT`",
        "`COLD_STORAGE_URL`",
        "`ADAPTERS_SCHEMAS_DIR`",
        "`INGEST_MAX_FILES`",
    } <= set(rows)


def test_every_configurable_field_says_what_it_means() -> None:
    vague = [line for line in table().splitlines()[2:] if line.rstrip().endswith("|  |")]
    assert vague == []


@pytest.mark.parametrize(
    ("variable", "row"),
    [
        ("DEMO_SIZE", "| `DEMO_SIZE` | demo | `8388608` (8 MiB) | bytes |"),
        ("DEMO_RATIO", "| `DEMO_RATIO` | demo | `0.5` | a share |"),
        ("DEMO_FLAG", "| `DEMO_FLAG` | demo | `1` | on or off |"),
        ("DEMO_FOLDER", "| `DEMO_FOLDER` | demo | unset | x |"),
        ("DEMO_URL", "| `DEMO_URL` | demo | empty | where \\| it goes |"),
    ],
)
def test_a_row_shows_the_default_as_one_would_write_the_variable(variable: str, row: str) -> None:
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in settings_table([("demo", _Demo)]).splitlines()
    }
    assert rows[variable] == row
    assert "internal" not in settings_table([("demo", _Demo)])


def test_writing_the_block_replaces_only_what_lies_between_the_markers() -> None:
    text = f"# Title\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n"
    assert with_block(text, "new") == f"# Title\n\nbefore\n{BEGIN}\nnew\n{END}\nafter\n"
    assert block_of(with_block(text, "new")) == "new"


def test_every_services_settings_model_is_in_the_table() -> None:
    documented = {model for _, model in PROCESSES}
    for module_file in sorted(REPO.glob("services/*/settings.py")):
        module = importlib.import_module(f"services.{module_file.parent.name}.settings")
        models = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, EnvModel)
            and value.__module__ == module.__name__
        ]
        assert len(models) == 1, f"{module_file}: one settings model per service"
        assert models[0] in documented, f"{models[0].__name__} is missing from infra.settings_doc"
