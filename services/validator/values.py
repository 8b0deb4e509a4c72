"""The tensors' values and dtypes: what a server would load, decided from counts and headers.

A NaN or an infinity in one LoRA matrix spreads through every token the adapter touches;
the server loads it without complaint. `count_non_finite` classifies raw little-endian
bytes by their exponent bits (all ones: NaN when the mantissa is non-zero, else an
infinity signed by the top bit), so no float is ever materialised and a chunk of any
size is counted in place. `inputs.scan_non_finite` feeds it bounded chunks of a file.

The dtype policy is the serving stack's: LoRA weights are served in bfloat16, float16 or
float32. float64 doubles the memory and is cast silently (or refused) by the server; an
integer or boolean tensor is no LoRA weight at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.validator.findings import error
from shared.events.common import Finding
from shared.findings import FindingCode
from shared.safetensors_header import HeaderError, SafetensorsHeader

SERVED_DTYPES = ("BF16", "F16", "F32")
DTYPE_POLICY = "convert to bfloat16/float16/float32 before submitting"
LISTED = 10  # names listed in one message; the count says how many in all


@dataclass(frozen=True, slots=True)
class FloatLayout:
    """Where a float dtype keeps its bits: the unsigned view, exponent and sign masks."""

    view: str
    exponent: int
    sign: int


FLOAT_LAYOUTS: Mapping[str, FloatLayout] = {
    "F64": FloatLayout("<u8", 0x7FF0000000000000, 1 << 63),
    "F32": FloatLayout("<u4", 0x7F800000, 1 << 31),
    "F16": FloatLayout("<u2", 0x7C00, 1 << 15),
    "BF16": FloatLayout("<u2", 0x7F80, 1 << 15),
}


@dataclass(frozen=True, slots=True)
class NonFinite:
    """How many NaN, +inf and -inf values one tensor holds."""

    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0

    @property
    def total(self) -> int:
        return self.nan + self.pos_inf + self.neg_inf

    def __add__(self, other: NonFinite) -> NonFinite:
        return NonFinite(
            self.nan + other.nan, self.pos_inf + other.pos_inf, self.neg_inf + other.neg_inf
        )

    def describe(self) -> str:
        kinds = (("NaN", self.nan), ("+inf", self.pos_inf), ("-inf", self.neg_inf))
        return ", ".join(f"{n} {kind}" for kind, n in kinds if n)


def count_non_finite(dtype: str, data: bytes) -> NonFinite:
    """Non-finite values among whole elements of `data` (a float dtype's raw bytes)."""
    layout = FLOAT_LAYOUTS[dtype]
    view = np.dtype(layout.view)
    usable = len(data) - len(data) % view.itemsize
    bits = np.frombuffer(data, dtype=view, count=usable // view.itemsize)
    exponent = view.type(layout.exponent)
    special = bits[(bits & exponent) == exponent]  # exponent all ones: NaN or infinity
    if special.size == 0:
        return NonFinite()
    mantissa = view.type((layout.sign - 1) & ~layout.exponent)  # the bits below the exponent
    infinite = special[(special & mantissa) == 0]
    negative = int(np.count_nonzero(infinite & view.type(layout.sign)))
    return NonFinite(
        nan=int(special.size - infinite.size),
        pos_inf=int(infinite.size - negative),
        neg_inf=negative,
    )


def check_non_finite(scans: Mapping[str, Mapping[str, NonFinite]]) -> list[Finding]:
    """One finding per file: every tensor holding NaN or infinity, with its counts."""
    findings = []
    for path, tensors in sorted(scans.items()):
        bad = sorted((name, n) for name, n in tensors.items() if n.total)
        if not bad:
            continue
        total = sum((n for _, n in bad), NonFinite())
        listed = "; ".join(f"{name} ({n.describe()})" for name, n in bad[:LISTED])
        more = f"; and {len(bad) - LISTED} more tensors" if len(bad) > LISTED else ""
        findings.append(
            error(
                FindingCode.NON_FINITE_VALUES,
                f"{path}: {len(bad)} tensor(s) hold non-finite values, which a server loads "
                f"and spreads to every output: {listed}{more}; retrain or fix the export",
                path=path,
                tensors=",".join(name for name, _ in bad[:LISTED]),
                count=total.total,
                nan=total.nan,
                pos_inf=total.pos_inf,
                neg_inf=total.neg_inf,
            )
        )
    return findings


def check_dtypes(headers: Mapping[str, SafetensorsHeader | HeaderError]) -> list[Finding]:
    """One finding per file and refused dtype, naming its tensors and the policy."""
    findings = []
    for path, header in sorted(headers.items()):
        if not isinstance(header, SafetensorsHeader):
            continue
        by_dtype: dict[str, list[str]] = {}
        for name, info in sorted(header.tensors.items()):
            if info.dtype not in SERVED_DTYPES:
                by_dtype.setdefault(info.dtype, []).append(name)
        for dtype, names in sorted(by_dtype.items()):
            listed = ", ".join(names[:LISTED])
            more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
            findings.append(
                error(
                    FindingCode.DTYPE_NOT_SERVED,
                    f"{path}: {len(names)} tensor(s) are {dtype}, which is not served "
                    f"({listed}{more}); adapter weights must be "
                    f"{'/'.join(SERVED_DTYPES)}: {DTYPE_POLICY}",
                    path=path,
                    dtype=dtype,
                    tensors=",".join(names[:LISTED]),
                    count=len(names),
                    expected=",".join(SERVED_DTYPES),
                    found=dtype,
                )
            )
    return findings
