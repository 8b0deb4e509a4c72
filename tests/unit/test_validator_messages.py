"""Findings that say what to fix, on revisions staged in a real store: the values scanned in
bounded chunks, the tokenizer and template differences, a duplicated config key, DoRA and
quantization as one finding per cause; and ingest's message for a path with '..'."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from services.ingest.adapters import LocalDirectorySource
from services.ingest.ports import Limits, SourceRefused
from services.validator import inputs as reader
from services.validator import values
from services.validator.checks import RevisionInputs, check_revision
from services.validator.inputs import read_revision_inputs
from services.validator.values import NonFinite
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.safetensors_header import read_header_file
from tests.corpus import st_writer
from tests.corpus.adapters import (
    HIDDEN,
    TINY_MODEL_ID,
    Scenario,
    environment_for,
    lora_tensors,
    stage,
    tiny_base_spec,
    tiny_tokenizer_files,
)
from tests.corpus.bad_cases import BY_NAME

NAN_TENSOR = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"


def inputs_for(scenario: Scenario, **kwargs: object) -> RevisionInputs:
    return read_revision_inputs(
        scenario.store,
        scenario.manifest,
        scenario.base,
        scenario.environments,
        **kwargs,  # type: ignore[arg-type]
    )


def only(findings: list[Finding], code: FindingCode) -> list[Finding]:
    return [f for f in findings if f.code == code]


def test_a_nan_is_found_in_the_stored_file_and_named_with_its_tensor(tmp_path: Path) -> None:
    inputs = inputs_for(BY_NAME["nan_in_one_lora_matrix"].build(tmp_path))
    assert inputs.value_scans == {"adapter_model.safetensors": {NAN_TENSOR: NonFinite(nan=1)}}
    (finding,) = only(check_revision(inputs), FindingCode.NON_FINITE_VALUES)
    assert NAN_TENSOR in finding.message and "(1 NaN)" in finding.message


def test_values_are_read_in_bounded_chunks_whatever_the_tensor_weighs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = np.zeros((64, 1000), np.float16)
    big[0, 0], big[40, 999], big[63, 999] = np.inf, -np.inf, np.nan  # first, middle, last
    tensors = {**lora_tensors(tiny_base_spec()), "base_model.model.extra.lora_A.weight": big}
    scenario = stage(tmp_path, adapter={"tensors": tensors})
    reads: list[int] = []
    real_count = values.count_non_finite

    def counting(dtype: str, data: bytes) -> NonFinite:
        reads.append(len(data))
        return real_count(dtype, data)

    monkeypatch.setattr(reader, "SCAN_CHUNK_BYTES", 256)
    monkeypatch.setattr(reader, "count_non_finite", counting)
    scans = inputs_for(scenario).value_scans["adapter_model.safetensors"]
    assert scans == {"base_model.model.extra.lora_A.weight": NonFinite(1, 1, 1)}
    assert max(reads) == 256 and sum(reads) > 64 * 1000 * 2


def test_a_header_only_read_scans_no_values_unless_asked(tmp_path: Path) -> None:
    scenario = BY_NAME["nan_in_one_lora_matrix"].build(tmp_path)
    assert inputs_for(scenario, verify_hashes=False).value_scans == {}
    assert inputs_for(scenario, verify_hashes=False, scan_values=True).value_scans


def test_an_added_token_is_named_in_the_tokenizer_mismatch(tmp_path: Path) -> None:
    files = tiny_tokenizer_files()
    body = json.loads(files["tokenizer.json"])
    body["added_tokens"] = [{"id": 512, "content": "<|tool|>", "special": True}]
    shipped = {**files, "tokenizer.json": json.dumps(body).encode()}
    findings = check_revision(inputs_for(stage(tmp_path, adapter={"tokenizer": shipped})))
    (finding,) = only(findings, FindingCode.TOKENIZER_MISMATCH)
    assert f"has 513 tokens, base {TINY_MODEL_ID} has 512" in finding.message
    assert "'<|tool|>'" in finding.message
    assert finding.evidence["expected"] != finding.evidence["found"]  # hashes kept


def test_a_changed_token_says_the_sizes_are_equal(tmp_path: Path) -> None:
    (finding,) = only(
        check_revision(inputs_for(BY_NAME["tokenizer_from_another_revision"].build(tmp_path))),
        FindingCode.TOKENIZER_MISMATCH,
    )
    assert "have 512 tokens, so tokens or settings were changed" in finding.message


def test_with_the_base_files_at_hand_the_added_tokens_of_each_side_are_listed(
    tmp_path: Path,
) -> None:
    base_files = tiny_tokenizer_files()
    base_body = json.loads(base_files["tokenizer.json"])
    base_body["added_tokens"] = [{"id": 512, "content": "<pad>"}]
    shipped_body = {**base_body, "added_tokens": [{"id": 512, "content": "<|tool|>"}]}
    shipped = {**base_files, "tokenizer.json": json.dumps(shipped_body).encode()}
    reference = {**base_files, "tokenizer.json": json.dumps(base_body).encode()}
    scenario = stage(tmp_path, adapter={"tokenizer": shipped})
    findings = check_revision(inputs_for(scenario, base_tokenizer_files=reference))
    (finding,) = only(findings, FindingCode.TOKENIZER_MISMATCH)
    assert "vocabulary size 513 shipped, 513 in base" in finding.message
    assert "only in the shipped tokenizer: '<|tool|>'" in finding.message
    assert "only in the base's tokenizer: '<pad>'" in finding.message


def test_the_template_mismatch_shows_the_first_differing_line(tmp_path: Path) -> None:
    scenario = BY_NAME["chat_template_edited_by_one_character"].build(tmp_path)
    inputs = inputs_for(scenario, base_tokenizer_files=tiny_tokenizer_files())
    (finding,) = only(check_revision(inputs), FindingCode.CHAT_TEMPLATE_MISMATCH)
    assert "first difference on line 2" in finding.message
    assert 'declared "ent\'] }}</s>", shipped "ent\'] }}</S>"' in finding.message


def test_without_the_base_files_the_template_message_quotes_the_shipped_start(
    tmp_path: Path,
) -> None:
    scenario = BY_NAME["chat_template_edited_by_one_character"].build(tmp_path)
    (finding,) = only(check_revision(inputs_for(scenario)), FindingCode.CHAT_TEMPLATE_MISMATCH)
    assert "the shipped one (3 lines) begins '{% for m in messages'" in finding.message


def test_a_duplicated_config_key_is_named(tmp_path: Path) -> None:
    def twice(folder: Path) -> None:
        text = (folder / "adapter_config.json").read_text()
        (folder / "adapter_config.json").write_text(text.replace('"r": 8,', '"r": 8, "r": 64,'))

    findings = check_revision(inputs_for(stage(tmp_path, edit=twice)))
    (finding,) = only(findings, FindingCode.ADAPTER_CONFIG_INVALID)
    assert "key(s) 'r' appear twice in one object" in finding.message


def test_dora_on_every_module_is_one_finding_listing_the_modules(tmp_path: Path) -> None:
    tensors = lora_tensors(tiny_base_spec())
    magnitudes = {
        name.replace("lora_A.weight", "lora_magnitude_vector"): np.ones(HIDDEN, np.float32)
        for name in tensors
        if name.endswith("lora_A.weight")
    }
    scenario = stage(
        tmp_path, adapter={"config": {"use_dora": True}, "tensors": {**tensors, **magnitudes}}
    )
    (finding,) = only(check_revision(inputs_for(scenario)), FindingCode.UNEXPECTED_TENSOR)
    assert "4 tensor(s) on 4 module(s)" in finding.message
    assert "model.layers.1.self_attn.v_proj" in finding.message
    assert "use_dora=false" in finding.message


def test_a_profile_offered_nowhere_is_one_finding_naming_base_and_environments(
    tmp_path: Path,
) -> None:
    scenario = stage(tmp_path, manifest={"quantization_profile": "int4-awq"})
    assert scenario.base is not None
    inputs = dataclasses.replace(
        inputs_for(scenario),
        environments=[*scenario.environments, environment_for(scenario.base, name="prod")],
    )
    (finding,) = only(check_revision(inputs), FindingCode.QUANTIZATION_MISMATCH)
    assert "trained for int4-awq" in finding.message
    assert "base offers bf16" in finding.message
    assert "environment staging offers bf16" in finding.message
    assert "environment prod offers bf16" in finding.message
    assert finding.evidence["environment"] == "staging,prod"


def test_a_climb_that_stays_inside_the_root_is_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "run-1").mkdir()
    source = LocalDirectorySource([tmp_path])
    with pytest.raises(SourceRefused) as caught:
        source.list_files(f"{tmp_path}/run-1/../run-1", Limits())
    assert caught.value.code == FindingCode.PATH_ESCAPES_ROOT
    assert "contains '..' components; give the path without them" in caught.value.message
    assert str(tmp_path / "run-1") in caught.value.message


def test_a_climb_out_of_the_root_still_says_outside(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    source = LocalDirectorySource([tmp_path / "root"])
    with pytest.raises(SourceRefused) as caught:
        source.list_files(f"{tmp_path}/root/../elsewhere", Limits())
    assert "is outside the allowed roots" in caught.value.message


def test_a_scan_reads_the_tensor_bytes_not_the_header(tmp_path: Path) -> None:
    # A header full of 0xff-looking text must not be mistaken for values.
    path = tmp_path / "w.safetensors"
    st_writer.write(path, {"t": np.zeros(4, np.float32)}, {"pad": "\u00ff" * 64})
    assert reader.scan_non_finite(path, read_header_file(path)) == {}
