"""The bounded safetensors header parser: what it accepts, what it refuses, and its bound."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.safetensors_header import (
    HeaderError,
    SafetensorsHeader,
    TensorInfo,
    read_header,
    read_header_file,
    sniff_format,
)
from tests.corpus import st_writer

BOUND = 4096


class BoundedReader(io.BytesIO):
    """A stream that records how many bytes the parser asked for, in total and at once."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requested = 0

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and size >= 0, "the parser must never read to the end"
        self.requested += size
        return super().read(size)


def parse(data: bytes, *, bound: int = BOUND) -> SafetensorsHeader:
    return read_header(BoundedReader(data), len(data), max_header_bytes=bound)


def code_of(data: bytes, *, bound: int = BOUND, file_size: int | None = None) -> str:
    size = len(data) if file_size is None else file_size
    with pytest.raises(HeaderError) as caught:
        read_header(BoundedReader(data), size, max_header_bytes=bound)
    return caught.value.code


def header(entries: dict[str, object], data: bytes = b"") -> bytes:
    return st_writer.frame(json.dumps(entries).encode(), data)


def tensor(
    dtype: str = "F32", shape: Iterable[object] = (2,), offsets: Iterable[object] = (0, 8)
) -> dict[str, object]:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def torch_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    return buffer.getvalue()


def test_reads_dtype_shape_offsets_and_metadata_of_a_written_file() -> None:
    data = st_writer.encode(
        {"a": np.zeros((2, 3), np.float16), "b": np.arange(4, dtype=np.int64)}, {"format": "pt"}
    )
    parsed = read_header(io.BytesIO(data), len(data))
    assert parsed.tensors == {
        "a": TensorInfo(dtype="F16", shape=(2, 3), data_offsets=(0, 12)),
        "b": TensorInfo(dtype="I64", shape=(4,), data_offsets=(12, 44)),
    }
    assert parsed.metadata == {"format": "pt"}


def test_accepts_an_empty_header_and_zero_sized_tensors() -> None:
    assert read_header(io.BytesIO(header({})), len(header({}))).tensors == {}
    empty = header(
        {"e": tensor(shape=(0, 5), offsets=(0, 0)), "s": tensor(shape=(), offsets=(0, 4))}, b"abcd"
    )
    assert set(parse(empty).tensors) == {"e", "s"}


def test_a_header_of_128_bytes_is_not_mistaken_for_a_pickle() -> None:
    entries = {"t": tensor("U8", (1,), (0, 1))}
    text = json.dumps(entries).encode()
    text += b" " * (128 - len(text))
    data = st_writer.frame(text, b"x")
    assert data[0] == 0x80
    assert sniff_format(data[:9]) == "safetensors"
    assert set(parse(data).tensors) == {"t"}


REFUSED = [
    ("pickle_protocol_2", pickle.dumps({"w": [1.0]}, protocol=2), "pickle_detected"),
    ("pickle_protocol_4", pickle.dumps({"w": [1.0]}, protocol=4), "pickle_detected"),
    ("pickle_protocol_5", pickle.dumps(list(range(50)), protocol=5), "pickle_detected"),
    ("torch_zip_archive", torch_zip(), "pickle_detected"),
    ("length_bomb", (1 << 40).to_bytes(8, "little") + b"{}", "header_too_large"),
    ("length_one_above_the_bound", (BOUND + 1).to_bytes(8, "little") + b"{", "header_too_large"),
    ("shorter_than_the_prefix", b"\x08\x00\x00", "truncated"),
    ("empty_file", b"", "truncated"),
    ("header_longer_than_file", (100).to_bytes(8, "little") + b"{}", "truncated"),
    ("tensor_past_the_end", header({"t": tensor()}, b"1234"), "truncated"),
    ("not_json", st_writer.frame(b"{not json"), "malformed_header"),
    ("json_array", st_writer.frame(b"[1, 2]"), "malformed_header"),
    ("leading_space", st_writer.frame(b' {"t": 1}'), "malformed_header"),
    ("not_utf8", st_writer.frame(b'{"\xff": 1}'), "malformed_header"),
    ("zero_length_header", st_writer.frame(b""), "malformed_header"),
    ("tensor_not_an_object", header({"t": [1]}), "malformed_header"),
    ("unknown_dtype", header({"t": tensor("F128")}, bytes(8)), "malformed_header"),
    ("negative_dim", header({"t": tensor(shape=(-2,))}, bytes(8)), "malformed_header"),
    ("boolean_dim", header({"t": tensor(shape=(True, 2))}, bytes(8)), "malformed_header"),
    ("float_dim", header({"t": tensor(shape=(2.0,))}, bytes(8)), "malformed_header"),
    ("shape_not_a_list", header({"t": {**tensor(), "shape": 2}}, bytes(8)), "malformed_header"),
    ("three_offsets", header({"t": tensor(offsets=(0, 4, 8))}, bytes(8)), "malformed_header"),
    ("reversed_offsets", header({"t": tensor(offsets=(8, 0))}, bytes(8)), "malformed_header"),
    ("size_disagrees", header({"t": tensor(shape=(3,))}, bytes(8)), "malformed_header"),
    ("hostile_shape", header({"t": tensor(shape=[10**9] * 50)}, bytes(8)), "malformed_header"),
    (
        "overlapping_tensors",
        header({"a": tensor(), "b": tensor(offsets=(4, 12))}, bytes(12)),
        "malformed_header",
    ),
    ("hole_before_tensor", header({"t": tensor(offsets=(4, 12))}, bytes(12)), "malformed_header"),
    ("bytes_after_last_tensor", header({"t": tensor()}, bytes(9)), "malformed_header"),
    ("duplicate_tensor_key", st_writer.frame(b'{"t": {}, "t": {}}'), "malformed_header"),
    ("metadata_not_strings", header({"__metadata__": {"n": 1}}), "malformed_header"),
    (
        "deeply_nested_json",
        st_writer.frame(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "malformed_header",
    ),
]


@pytest.mark.parametrize(("data", "code"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refuses_each_bad_file_with_its_stable_code(data: bytes, code: str) -> None:
    bound = 1 << 20 if code == "malformed_header" else BOUND
    assert code_of(data, bound=bound) == code


def test_detects_a_pickle_before_trusting_its_length_prefix() -> None:
    data = pickle.dumps({"w": 1}, protocol=4)
    assert int.from_bytes(data[:8], "little") > BOUND  # the prefix reads as a length bomb
    assert code_of(data) == "pickle_detected"


def test_a_file_shorter_than_its_declared_size_is_truncated() -> None:
    data = header({"t": tensor()}, bytes(8))
    assert code_of(data[:20], file_size=len(data)) == "truncated"


def test_never_asks_for_more_than_the_bound_for_a_length_bomb() -> None:
    reader = BoundedReader((1 << 62).to_bytes(8, "little") + b"{" * 64)
    with pytest.raises(HeaderError):
        read_header(reader, 1 << 63, max_header_bytes=BOUND)
    assert reader.requested <= 9


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (b"PK\x03\x04rest", "zip"),
        (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00", "pickle"),
        (b"\x80\x02}q\x00(X\x03\x00", "pickle"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{", "safetensors"),
        (b"\x80\x00\x00\x00\x00\x00\x00\x00{", "safetensors"),
        (b"\x80\x01\x00\x00\x00\x00\x00\x00[", "unknown"),
        (b"GGUF\x03\x00\x00\x00\x00", "unknown"),
        (b"", "unknown"),
    ],
)
def test_sniffs_the_format_from_the_first_bytes(first: bytes, expected: str) -> None:
    assert sniff_format(first) == expected


def test_reads_a_header_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    st_writer.write(path, {"w": np.ones((2, 2), np.float32)})
    assert read_header_file(path).tensors["w"].shape == (2, 2)


def test_reads_what_the_safetensors_library_writes_and_the_library_reads_ours(
    tmp_path: Path,
) -> None:
    from safetensors.numpy import load_file, save_file

    arrays: dict[str, np.ndarray] = {
        "a.lora_A.weight": np.ones((8, 64), np.float16),
        "b": np.arange(6, dtype=np.int32),
    }
    theirs = tmp_path / "theirs.safetensors"
    save_file(arrays, str(theirs), metadata={"format": "pt"})
    parsed = read_header_file(theirs)
    assert {n: t.shape for n, t in parsed.tensors.items()} == {
        n: a.shape for n, a in arrays.items()
    }
    ours = tmp_path / "ours.safetensors"
    st_writer.write(ours, arrays, {"format": "pt"})
    loaded = load_file(str(ours))
    assert all(np.array_equal(loaded[n], a) for n, a in arrays.items())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_raise_nothing_but_header_errors_and_stay_within_the_bound(
    data: bytes,
) -> None:
    reader = BoundedReader(data)
    try:
        read_header(reader, len(data), max_header_bytes=64)
    except HeaderError as exc:
        assert exc.code in {"pickle_detected", "header_too_large", "truncated", "malformed_header"}
    assert reader.requested <= 9 + 64


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 1 << 70) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
ENTRIES = st.dictionaries(
    st.sampled_from(["t", "u", "__metadata__"]),
    st.fixed_dictionaries(
        {},
        optional={
            "dtype": st.sampled_from(["F32", "U8", "BF16", "X"]) | JSON_VALUES,
            "shape": st.lists(st.integers(-1, 4), max_size=3) | JSON_VALUES,
            "data_offsets": st.lists(st.integers(-1, 40), max_size=3) | JSON_VALUES,
        },
    )
    | JSON_VALUES,
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(ENTRIES, st.binary(max_size=40))
def test_header_shaped_json_is_either_parsed_consistently_or_refused(
    entries: dict[str, object], data: bytes
) -> None:
    raw = header(entries, data)
    try:
        parsed = read_header(io.BytesIO(raw), len(raw))
    except HeaderError as exc:
        assert exc.code in {"truncated", "malformed_header"}
        return
    spans = sorted(t.data_offsets for t in parsed.tensors.values())
    assert sum(end - begin for begin, end in spans) == len(data)


CODES = {"pickle_detected", "header_too_large", "truncated", "malformed_header"}
VALID = st_writer.encode(
    {
        "base_model.model.layers.0.q_proj.lora_A.weight": np.zeros((2, 4), np.float32),
        "base_model.model.layers.0.q_proj.lora_B.weight": np.zeros((4, 2), np.float16),
    },
    {"format": "pt"},
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID) - 1))
def test_every_truncation_of_a_valid_file_is_truncated(cut: int) -> None:
    assert code_of(VALID[:cut], bound=len(VALID)) == "truncated"


@settings(max_examples=400, deadline=None)
@given(
    at=st.integers(min_value=0),
    inserted=st.binary(max_size=9),
    removed=st.integers(0, 9),
    xor=st.integers(0, 255),
)
def test_a_mutated_valid_file_is_parsed_consistently_or_refused_with_a_code(
    at: int, inserted: bytes, removed: int, xor: int
) -> None:
    i = at % len(VALID)
    flipped = VALID[:i] + bytes([VALID[i] ^ xor]) + VALID[i + 1 :]
    mutated = flipped[:i] + inserted + flipped[i + removed :]
    reader = BoundedReader(mutated)
    try:
        parsed = read_header(reader, len(mutated), max_header_bytes=BOUND)
    except HeaderError as exc:
        assert exc.code in CODES, exc
    else:
        spans = sorted(t.data_offsets for t in parsed.tensors.values())
        data_size = len(mutated) - 8 - parsed.header_length
        assert sum(end - begin for begin, end in spans) == data_size
    assert reader.requested <= 9 + BOUND
