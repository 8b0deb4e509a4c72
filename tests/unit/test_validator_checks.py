"""The validator's static checks, driven by the adapter corpus and by one table per check.

The corpus stages real revisions in a real `LocalArtifactStore` (the store is ours, so
no fake); the table calls each check function alone on plain values.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from services.validator import checks
from services.validator.checks import RevisionInputs, check_revision
from services.validator.inputs import read_revision_inputs
from shared.events.common import Finding
from tests.corpus.adapters import Scenario, good_scenarios, stage, tiny_tokenizer_files
from tests.corpus.bad_cases import BAD_CASES, BadCase
from tests.corpus.check_rows import ARTIFACT_ROWS, Row
from tests.corpus.contract_rows import CONTRACT_ROWS
from tests.unit.test_validator_content import CONTENT_ROWS

TABLE = dict(re.findall(r"^\| (\w+) +\| (\w+) ", checks.__doc__ or "", re.MULTILINE))
del TABLE["code"]  # the header row
ROWS = (*ARTIFACT_ROWS, *CONTRACT_ROWS, *CONTENT_ROWS)


def inputs_for(scenario: Scenario) -> RevisionInputs:
    return read_revision_inputs(
        scenario.store, scenario.manifest, scenario.base, scenario.environments
    )


def errors(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings if f.severity == "error"]


@pytest.mark.parametrize("name", sorted(good_scenarios()))
def test_a_structurally_good_adapter_gives_no_error_finding(tmp_path: Path, name: str) -> None:
    findings = check_revision(inputs_for(good_scenarios()[name](tmp_path)))
    assert errors(findings) == []


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.name for c in BAD_CASES])
def test_each_bad_adapter_is_rejected_with_its_expected_code(tmp_path: Path, case: BadCase) -> None:
    findings = check_revision(inputs_for(case.build(tmp_path)))
    assert case.expected_code in errors(findings), findings
    for finding in findings:
        assert finding.message and finding.evidence, finding
        assert TABLE.get(finding.code) == finding.severity, finding


def test_the_corpus_holds_many_distinct_bad_variants() -> None:
    assert len({c.name for c in BAD_CASES}) == len(BAD_CASES) >= 18
    assert len({c.expected_code for c in BAD_CASES}) >= 18


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_each_check_function_alone_gives_exactly_the_tabled_codes(row: Row) -> None:
    findings = row.call()
    assert sorted(f.code for f in findings) == sorted(row.codes), findings
    assert all(TABLE.get(f.code) == f.severity for f in findings), findings


def test_every_check_function_has_a_passing_and_a_failing_row() -> None:
    public = {
        name
        for module in _check_modules()
        for name, value in vars(module).items()
        if name.startswith("check_") and callable(value) and value.__module__ == module.__name__
    } - {"check_revision"}
    passing = {r.check.__name__ for r in ROWS if not r.codes}
    failing = {r.check.__name__ for r in ROWS if r.codes}
    assert public <= passing, public - passing
    assert public <= failing, public - failing


def test_every_code_in_the_module_table_is_raised_by_a_case_or_a_row() -> None:
    raised = {c.expected_code for c in BAD_CASES} | {code for r in ROWS for code in r.codes}
    assert set(TABLE) == raised, set(TABLE) ^ raised


def test_the_reader_never_parses_a_file_whose_name_or_bytes_say_pickle(tmp_path: Path) -> None:
    case = next(c for c in BAD_CASES if c.name == "pickled_bin_weights")
    inputs = inputs_for(case.build(tmp_path))
    assert "adapter_model.bin" not in inputs.headers
    assert inputs.sniffed["adapter_model.bin"] == "pickle"


def test_the_reader_bounds_the_adapter_config(tmp_path: Path) -> None:
    def bloat(folder: Path) -> None:
        (folder / "adapter_config.json").write_text('{"pad": "' + "x" * (2 << 20) + '"}')

    inputs = inputs_for(stage(tmp_path, edit=bloat))
    assert inputs.adapter_config is None
    assert "larger than" in (inputs.adapter_config_error or "")
    assert "adapter_config_invalid" in errors(check_revision(inputs))


def test_the_reader_hashes_tokenizer_files_only_when_the_revision_ships_them(
    tmp_path: Path,
) -> None:
    plain = inputs_for(stage(tmp_path / "plain"))
    shipped = inputs_for(stage(tmp_path / "shipped", adapter={"tokenizer": tiny_tokenizer_files()}))
    assert (plain.tokenizer_hash_from_files, plain.chat_template_hash_from_files) == (None, None)
    assert shipped.tokenizer_hash_from_files == shipped.manifest.tokenizer_hash
    assert shipped.chat_template_hash_from_files == shipped.manifest.chat_template_hash


def test_the_reader_marks_unparseable_tokenizer_files_so_they_mismatch(tmp_path: Path) -> None:
    scenario = stage(tmp_path, adapter={"tokenizer": {"tokenizer.json": b"{broken"}})
    inputs = inputs_for(scenario)
    assert (inputs.tokenizer_hash_from_files or "").startswith("unreadable:")
    assert "tokenizer_mismatch" in errors(check_revision(inputs))


def test_the_reader_splits_target_environments_into_known_and_unknown(tmp_path: Path) -> None:
    scenario = stage(tmp_path, manifest={"target_environments": ("staging", "moon-base")})
    inputs = inputs_for(scenario)
    assert [e.name for e in inputs.environments] == ["staging"]
    assert list(inputs.unknown_environments) == ["moon-base"]


def test_checking_reads_nothing_and_repeats_exactly(tmp_path: Path) -> None:
    case = next(c for c in BAD_CASES if c.name == "lora_b_of_the_wrong_shape")
    inputs = inputs_for(case.build(tmp_path))
    first = check_revision(inputs)
    shutil.rmtree(tmp_path)
    assert check_revision(inputs) == first
    assert check_revision(dataclasses.replace(inputs)) == first


def _check_modules() -> list[ModuleType]:
    from services.validator import (
        compatibility,
        contents,
        integrity,
        lora_tensors,
        provenance,
        values,
    )

    return [checks, compatibility, contents, integrity, lora_tensors, provenance, values]
