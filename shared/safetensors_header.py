"""The safetensors header, read without loading a tensor and without trusting a length.

Layout: an 8-byte little-endian length N, N bytes of UTF-8 JSON that begins with `{`
(optionally padded with spaces), then the data section. Every tensor's `data_offsets`
are relative to the data section, and together they must cover it without overlap or
hole, so nothing can hide beside the tensors (the spec's guard against polyglot files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from shared.findings import FindingCode

MAX_HEADER_BYTES = 16 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = 0x80
PICKLE_PROTOCOLS = range(2, 6)  # `0x80 <protocol>` opens every pickle from protocol 2 on

DTYPE_SIZES: Mapping[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}

Format = Literal["safetensors", "pickle", "zip", "unknown"]
SNIFF_BYTES = 9  # the length prefix and the header's first byte


class HeaderError(Exception):
    """A header the parser refuses; `code` is stable and becomes a finding's code."""

    def __init__(self, code: FindingCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str] = field(default_factory=dict)
    header_length: int = 0


def sniff_format(first_bytes: bytes) -> Format:
    """What a file's first bytes say it is; a pickle is named whatever its file is called.

    A safetensors length prefix may itself begin with 0x80 (a 128-byte header), so a
    `0x80 <protocol>` opening counts as pickle only when byte 8 is not the `{` that every
    safetensors header starts with.
    """
    if first_bytes.startswith(ZIP_MAGIC):
        return "zip"
    opens_header = first_bytes[8:9] == b"{"
    if (
        len(first_bytes) >= 2
        and first_bytes[0] == PICKLE_PROTO
        and first_bytes[1] in PICKLE_PROTOCOLS
        and not opens_header
    ):
        return "pickle"
    return "safetensors" if opens_header else "unknown"


def read_header(
    f: BinaryIO, file_size: int, *, max_header_bytes: int = MAX_HEADER_BYTES
) -> SafetensorsHeader:
    """Parse the header at the stream's position; never reads more than the bound."""
    head = f.read(min(file_size, SNIFF_BYTES))
    if sniff_format(head) in ("pickle", "zip"):
        raise HeaderError(FindingCode.PICKLE_DETECTED, "the bytes are a pickle or a zip archive")
    if len(head) < 8:
        raise HeaderError(
            FindingCode.TRUNCATED, f"{len(head)} bytes is shorter than the length prefix"
        )
    n = int.from_bytes(head[:8], "little")
    if n > max_header_bytes:
        raise HeaderError(
            FindingCode.HEADER_TOO_LARGE, f"declared header of {n} bytes exceeds {max_header_bytes}"
        )
    if 8 + n > file_size:
        raise HeaderError(
            FindingCode.TRUNCATED, f"header of {n} bytes runs past the {file_size}-byte file"
        )
    raw = head[8 : 8 + n]
    raw += f.read(n - len(raw))
    if len(raw) != n:
        raise HeaderError(
            FindingCode.TRUNCATED, f"the file ended {n - len(raw)} bytes into the header"
        )
    return parse_header(raw, data_size=file_size - 8 - n)


def read_header_file(path: Path, *, max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsHeader:
    with path.open("rb") as f:
        return read_header(f, path.stat().st_size, max_header_bytes=max_header_bytes)


def parse_header(raw: bytes, *, data_size: int) -> SafetensorsHeader:
    """Validate header bytes against a data section of `data_size` bytes."""
    body = _decode(raw)
    metadata = _parse_metadata(body.pop("__metadata__", None))
    tensors = {name: _parse_tensor(name, entry) for name, entry in body.items()}
    _check_layout(tensors, data_size)
    return SafetensorsHeader(tensors=tensors, metadata=metadata, header_length=len(raw))


def _malformed(message: str) -> HeaderError:
    return HeaderError(FindingCode.MALFORMED_HEADER, message)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _malformed("a key appears twice in one JSON object")
    return dict(pairs)


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw.startswith(b"{"):
        raise _malformed("the header does not begin with '{'")
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(f"the header is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _malformed("the header is not a JSON object")
    return body


def _parse_metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _malformed("__metadata__ must map strings to strings")
    return dict(value)


def _label(name: str) -> str:
    """A tensor name fit for a message: an attacker chooses it, so bound its length."""
    return repr(name if len(name) <= 120 else name[:117] + "...")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_tensor(name: str, entry: object) -> TensorInfo:
    label = _label(name)
    if not isinstance(entry, dict):
        raise _malformed(f"tensor {label} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise _malformed(f"tensor {label} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _malformed(f"tensor {label} shape is not a list of non-negative ints")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(o) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise _malformed(f"tensor {label} data_offsets are not [begin, end] with begin <= end")
    span = offsets[1] - offsets[0]
    needed = _byte_size(dtype, shape, span)
    if needed != span:
        amount = f"{needed}" if needed < span else f"at least {needed}"
        dims = shape if len(shape) <= 8 else [*shape[:8], "..."]  # hostile shapes are long
        raise _malformed(f"tensor {label} spans {span} bytes; {dtype} x {dims} needs {amount}")
    return TensorInfo(dtype=dtype, shape=tuple(shape), data_offsets=(offsets[0], offsets[1]))


def _byte_size(dtype: str, shape: list[int], span: int) -> int:
    """dtype size x shape, stopping once past `span`: a hostile shape stays cheap."""
    if 0 in shape:
        return 0
    size = DTYPE_SIZES[dtype]
    for dim in shape:
        size *= dim
        if size > span:
            break
    return size


def _check_layout(tensors: Mapping[str, TensorInfo], data_size: int) -> None:
    spans = sorted((t.data_offsets, name) for name, t in tensors.items())
    end = max((s[1] for s, _ in spans), default=0)
    if end > data_size:
        raise HeaderError(
            FindingCode.TRUNCATED, f"tensors end at byte {end} of a {data_size}-byte data section"
        )
    cursor = 0
    for (begin, stop), name in spans:
        if begin != cursor:
            kind = "overlaps the previous tensor" if begin < cursor else "leaves a hole before it"
            raise _malformed(f"tensor {_label(name)} at byte {begin} {kind} (expected {cursor})")
        cursor = stop
    if cursor != data_size:
        raise _malformed(f"{data_size - cursor} bytes after the last tensor belong to no tensor")
