"""The checks of what a revision's files hold: values, dtypes, file kinds, code references,
the declared base and the tokenizer's revision label. One table of rows (the style of
`tests/corpus/check_rows.py`; `test_validator_checks` runs them with the others), then
what each message must name for a person to fix it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from services.validator import contents, provenance, values
from services.validator.values import NonFinite, count_non_finite
from shared.manifest import FileEntry, Manifest
from shared.safetensors_header import SafetensorsHeader, read_header
from tests.corpus import st_writer
from tests.corpus.check_rows import BASE, FILES, MANIFEST, OTHER_BASE, Row, manifest

F64_WEIGHTS: dict[str, np.ndarray] = {
    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.zeros((8, 64)),
    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.zeros((64, 8)),
    "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight": np.zeros((8, 64), np.float32),
}
INT_WEIGHTS: dict[str, np.ndarray] = {
    "base_model.model.x.lora_A.weight": np.zeros((2, 2), np.int64)
}
GOOD_WEIGHTS: dict[str, np.ndarray] = {
    "a.lora_A.weight": np.zeros((2, 2), np.float32),
    "a.lora_B.weight": np.zeros((2, 2), np.float16),
}


def header(arrays: dict[str, np.ndarray]) -> SafetensorsHeader:
    data = st_writer.encode(arrays)
    return read_header(io.BytesIO(data), len(data))


def with_files(*paths: str) -> Manifest:
    return manifest(files=(*FILES, *(FileEntry(path=p, sha256="e" * 64, size=1) for p in paths)))


NAN_IN_Q = {"adapter_model.safetensors": {"q.lora_A.weight": NonFinite(nan=3, neg_inf=1)}}
LABELLED_OTHER = manifest(tokenizer_revision="v2-relabelled")
CONFIG_NAME = {"base_model_name_or_path": BASE.model_id}

CONTENT_ROWS: tuple[Row, ...] = (
    Row("values_finite", values.check_non_finite, ({"w.safetensors": {}},)),
    Row("nothing_scanned", values.check_non_finite, ({},)),
    Row(
        "values_nan_and_inf",
        values.check_non_finite,
        ({**NAN_IN_Q, "b.safetensors": {"k": NonFinite(pos_inf=1)}},),
        ("non_finite_values",) * 2,
    ),
    Row("dtypes_served", values.check_dtypes, ({"w.safetensors": header(GOOD_WEIGHTS)},)),
    Row(
        "f64_and_f32_mixed_one_finding_per_dtype",
        values.check_dtypes,
        ({"w.safetensors": header(F64_WEIGHTS)},),
        ("dtype_not_served",),
    ),
    Row(
        "integer_lora_matrix",
        values.check_dtypes,
        ({"w.safetensors": header(INT_WEIGHTS), "f.safetensors": header(F64_WEIGHTS)},),
        ("dtype_not_served",) * 2,
    ),
    Row(
        "adapter_and_tokenizer_files",
        contents.check_file_kinds,
        (
            with_files(
                "tokenizer.json",
                "tokenizer_config.json",
                "special_tokens_map.json",
                "chat_template.jinja",
                "recipe.json",
                "README.md",
                "LICENSE.txt",
                "shards/adapter-00001-of-00002.safetensors",
            ),
        ),
    ),
    Row(
        "python_and_shared_object",
        contents.check_file_kinds,
        (with_files("modeling_evil.py", "lib/fast.so"),),
        ("executable_content",) * 2,
    ),
    Row(
        "unknown_files_one_warning",
        contents.check_file_kinds,
        (with_files("notes.txt", "events.out.tfevents.1", "w.bin"),),
        ("unexpected_file",),
    ),
    Row(
        "configs_without_code",
        contents.check_code_references,
        (
            {
                "adapter_config.json": {
                    "trust_remote_code": False,
                    "auto_mapping": {
                        "base_model_class": "LlamaModel",
                        "parent_library": "transformers.models.llama.modeling_llama",
                    },
                },
                "generation_config.json": {"auto_map": None},
            },
        ),
    ),
    Row(
        "peft_auto_mapping_to_a_custom_library",
        contents.check_code_references,
        ({"adapter_config.json": {"auto_mapping": {"parent_library": "acme_models.x"}}},),
        ("executable_content",),
    ),
    Row(
        "auto_map_and_trust_remote_code",
        contents.check_code_references,
        (
            {
                "tokenizer_config.json": {"auto_map": {"AutoTokenizer": ["tok.Tok", None]}},
                "adapter_config.json": {"kwargs": {"trust_remote_code": True}},
            },
        ),
        ("executable_content",) * 2,
    ),
    Row("declared_base_same", contents.check_declared_base, (MANIFEST, CONFIG_NAME)),
    Row("no_config", contents.check_declared_base, (MANIFEST, None)),
    Row("base_name_empty", contents.check_declared_base, (MANIFEST, {"revision": "main"})),
    Row(
        "local_path_of_the_base",
        contents.check_declared_base,
        (MANIFEST, {"base_model_name_or_path": "/models/tiny-llama/", "revision": "main"}),
    ),
    Row(
        "declared_base_other",
        contents.check_declared_base,
        (MANIFEST, {"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}),
        ("declared_base_mismatch",),
    ),
    Row(
        "declared_base_case_differs_is_the_same_repository",
        contents.check_declared_base,
        (MANIFEST, {"base_model_name_or_path": BASE.model_id.upper()}),
        (),
    ),
    Row(
        "declared_base_from_a_mirror_is_the_same_repository",
        contents.check_declared_base,
        (MANIFEST, {"base_model_name_or_path": "mirror/" + BASE.model_id.rsplit("/", 1)[-1]}),
        (),
    ),
    Row(
        "declared_revision_other",
        contents.check_declared_base,
        (MANIFEST, {**CONFIG_NAME, "revision": "f" * 40}),
        ("declared_base_mismatch",),
    ),
    Row("tokenizer_label_same", provenance.check_tokenizer_revision, (MANIFEST, BASE)),
    Row("tokenizer_no_base", provenance.check_tokenizer_revision, (LABELLED_OTHER, None)),
    Row(
        "tokenizer_other_bytes_other_label",
        provenance.check_tokenizer_revision,
        (manifest(tokenizer_revision="v2", tokenizer_hash="sha256:" + "1" * 64), BASE),
    ),
    Row(
        "tokenizer_same_bytes_other_label",
        provenance.check_tokenizer_revision,
        (MANIFEST, OTHER_BASE),
        ("tokenizer_revision_mismatch",),
    ),
)


@pytest.mark.parametrize("row", CONTENT_ROWS, ids=[r.id for r in CONTENT_ROWS])
def test_each_content_check_alone_gives_exactly_the_tabled_codes(row: Row) -> None:
    assert sorted(f.code for f in row.call()) == sorted(row.codes)


@pytest.mark.parametrize(
    ("dtype", "array"),
    [
        ("F64", np.array([1, np.nan, np.inf, -np.inf, -np.inf, 0], np.float64)),
        ("F32", np.array([1, np.nan, np.inf, -np.inf, -np.inf, 0], np.float32)),
        ("F16", np.array([1, np.nan, np.inf, -np.inf, -np.inf, 65504], np.float16)),
    ],
)
def test_non_finite_values_are_counted_by_kind_from_raw_bits(dtype: str, array: np.ndarray) -> None:
    assert count_non_finite(dtype, array.astype(array.dtype.newbyteorder("<")).tobytes()) == (
        NonFinite(nan=1, pos_inf=1, neg_inf=2)
    )


def test_bfloat16_is_counted_from_the_top_half_of_float32() -> None:
    halves = (np.array([1, np.nan, -np.inf, 3e38], np.float32).view("<u4") >> 16).astype("<u2")
    assert count_non_finite("BF16", halves.tobytes()) == NonFinite(nan=1, neg_inf=1)


def test_a_partial_trailing_element_is_not_counted() -> None:
    assert count_non_finite("F32", b"\x00\x00\x80\x7f\x00\x00") == NonFinite(pos_inf=1)


def test_the_non_finite_message_names_file_tensor_count_and_kind() -> None:
    (finding,) = values.check_non_finite(NAN_IN_Q)
    assert "adapter_model.safetensors" in finding.message
    assert "q.lora_A.weight (3 NaN, 1 -inf)" in finding.message
    assert finding.evidence["count"] == "4"


def test_the_dtype_message_lists_the_tensors_and_states_the_policy() -> None:
    (finding,) = values.check_dtypes({"w.safetensors": header(F64_WEIGHTS)})
    assert "2 tensor(s) are F64" in finding.message
    assert "q_proj.lora_A.weight" in finding.message and "q_proj.lora_B.weight" in finding.message
    assert "v_proj" not in finding.message  # the F32 one is served
    assert "convert to bfloat16/float16/float32 before submitting" in finding.message


def test_the_executable_messages_name_the_file_and_the_key() -> None:
    (file_finding,) = contents.check_file_kinds(with_files("modeling_evil.py"))
    assert "modeling_evil.py" in file_finding.message and "remove it" in file_finding.message
    (key_finding,) = contents.check_code_references(
        {"tokenizer_config.json": {"auto_map": {"AutoTokenizer": ["tok.Tok", None]}}}
    )
    assert "tokenizer_config.json sets 'auto_map'" in key_finding.message
    assert key_finding.evidence == {"path": "tokenizer_config.json", "key": "auto_map"}


def test_unknown_files_are_listed_in_one_warning() -> None:
    (finding,) = contents.check_file_kinds(with_files("notes.txt", "run.log"))
    assert finding.severity == "warning"
    assert "notes.txt, run.log" in finding.message


def test_the_declared_base_message_names_both_sides() -> None:
    config = {"base_model_name_or_path": "meta-llama/Llama-3.1-8B", "revision": "a" * 40}
    (finding,) = contents.check_declared_base(MANIFEST, config)
    assert f"says the base is meta-llama/Llama-3.1-8B@{'a' * 40}" in finding.message
    assert f"the manifest says {BASE.model_id}@{BASE.revision}" in finding.message


def test_the_tokenizer_revision_warning_names_both_labels() -> None:
    (finding,) = provenance.check_tokenizer_revision(LABELLED_OTHER, BASE)
    assert finding.severity == "warning"
    assert "v2-relabelled" in finding.message and BASE.tokenizer_revision in finding.message


def test_rows_cover_a_pass_and_a_failure_of_every_new_check() -> None:
    checks = {r.check for r in CONTENT_ROWS}
    assert {c for c in checks if any(r.codes for r in CONTENT_ROWS if r.check is c)} == checks
    assert {c for c in checks if any(not r.codes for r in CONTENT_ROWS if r.check is c)} == checks


@pytest.mark.parametrize(
    ("declared", "shipped", "expected"),
    [
        ("a\nbcd\n", "a\nbXd\n", (2, "bcd", "bXd")),
        ("a\n", "a\nextra line\n", (2, "<end of template>", "extra line")),
        ("a\nb", "a", (2, "b", "<end of template>")),
        ("same", "same\n", (2, "<same text>", "<line ends differ>")),
    ],
)
def test_the_first_difference_is_a_line_number_and_both_sides(
    declared: str, shipped: str, expected: tuple[int, str, str]
) -> None:
    assert provenance.first_difference(declared, shipped) == expected
