"""A hand-written safetensors writer (numpy only): the format's layout, written out plainly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

DTYPES = {
    np.dtype("float16"): "F16",
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("int32"): "I32",
    np.dtype("int64"): "I64",
    np.dtype("bool"): "BOOL",
}


def frame(header: bytes, data: bytes = b"") -> bytes:
    """The 8-byte little-endian length, the header bytes, then the data: no checks at all."""
    return len(header).to_bytes(8, "little") + header + data


def encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """A valid safetensors file: tensors laid out in name order, header padded to 8 bytes."""
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    chunks, offset = [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return frame(text, b"".join(chunks))


def write(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> None:
    path.write_bytes(encode(tensors, metadata))
