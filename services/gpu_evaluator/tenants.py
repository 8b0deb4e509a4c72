"""Other tenants' adapters for multi-tenant pressure: how many a load profile asks for, and
stand-ins of the candidate's shape that play them.

A profile's `tenants` is a count (`4`), `slots` (fill the environment's `max_loras` beside
the candidate and the baseline: once loaded, nothing needs swapping), or `slots+N` (N more
than fit: adapters must be swapped out and loaded again). The evaluator never loads another
tenant's real weights (they are that tenant's): each stand-in is the candidate's own
safetensors file with every tensor's elements rotated by the stand-in's number, so it has
the candidate's rank, target modules, dtype and size (what loading and the LoRA kernels
cost) under a name and digest of its own. Pure apart from the files it writes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from services.gpu_evaluator.ports import AdapterRef
from shared.safetensors_header import DTYPE_SIZES, HeaderError, read_header_file

SPEC = re.compile(r"^(?:(?P<count>\d+)|slots(?:\s*\+\s*(?P<beyond>\d+))?)$")


class TenantsError(ValueError):
    """A `tenants` value that is none of `N`, `slots`, `slots+N`."""


class StandInError(Exception):
    """The candidate's weights cannot be copied into stand-ins (no readable safetensors)."""


@dataclass(frozen=True, slots=True)
class Tenants:
    count: int = 0  # others, when not relative to the slots
    relative: bool = False  # `slots` or `slots+N`: the free slots plus `count`

    @property
    def asked(self) -> bool:
        return self.relative or self.count > 0

    def resolve(self, *, slots: int, ours: int) -> int:
        """How many other tenants, beside `ours` adapters in `slots` slots."""
        return max(0, slots - ours) + self.count if self.relative else self.count


def parse_tenants(text: str) -> Tenants:
    value = str(text).strip().lower()
    if value in ("", "0", "none"):
        return Tenants()
    match = SPEC.match(value)
    if match is None:
        raise TenantsError(f"tenants {text!r}: write a count, `slots`, or `slots+N`")
    if match.group("count") is not None:
        return Tenants(count=int(match.group("count")))
    return Tenants(count=int(match.group("beyond") or 0), relative=True)


def write_stand_ins(candidate: AdapterRef, numbers: range, root: Path) -> list[AdapterRef]:
    """One stand-in per number under `root`, named `<adapter>~<number>`."""
    weights = sorted(candidate.path.glob("*.safetensors"))
    if not weights or not (candidate.path / "adapter_config.json").is_file():
        raise StandInError(
            f"adapter {candidate.adapter}: no adapter_config.json and safetensors weights in "
            f"{candidate.path} to copy into other tenants' stand-ins"
        )
    stand_ins = []
    for number in numbers:
        folder = root / f"{candidate.digest_hex[:16]}-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(f"stand-in {number} of {candidate.revision}\0".encode())
        for source in sorted(candidate.path.iterdir()):
            if source.suffix == ".safetensors":
                digest.update(rotate_tensors(source, folder / source.name, number))
            elif source.is_file():
                shutil.copyfile(source, folder / source.name)
        stand_ins.append(
            AdapterRef(f"{candidate.adapter}~{number}", "sha256:" + digest.hexdigest(), folder)
        )
    return stand_ins


def rotate_tensors(source: Path, target: Path, by: int) -> bytes:
    """Copy a safetensors file with each tensor's elements rotated by `by`; the header, and
    so every shape, dtype and offset, is unchanged. Returns the written bytes' SHA-256."""
    try:
        header = read_header_file(source)
    except HeaderError as exc:
        raise StandInError(f"{source.name}: {exc.message}") from exc
    digest = hashlib.sha256()
    with source.open("rb") as f, target.open("wb") as out:
        head = f.read(8 + header.header_length)
        out.write(head)
        digest.update(head)
        for info in sorted(header.tensors.values(), key=lambda t: t.data_offsets):
            start, end = info.data_offsets
            data = f.read(end - start)
            size = DTYPE_SIZES.get(info.dtype, 1)
            cut = (by * size) % len(data) if data else 0
            rotated = data[cut:] + data[:cut]
            out.write(rotated)
            digest.update(rotated)
    return digest.digest()
