"""Writes the missing golden sample of each schema's current version; never overwrites one."""

# Run once when a schema version is released:
#     PYTHONPATH=. .venv/bin/python tests/data/golden/make_golden.py
# A golden file is evidence of what a released writer produced: rewriting it would let a
# broken reader pass, so existing files are kept, and a missing older version is an error.

from __future__ import annotations

import sys
from pathlib import Path

from shared.codec import Codec
from shared.events import BY_SCHEMA
from tests.samples import sample

GOLDEN_DIR = Path(__file__).resolve().parent


def golden_name(full_name: str, version: int) -> str:
    return f"{full_name}.{version}.bin"


def main(golden_dir: Path = GOLDEN_DIR, codec: Codec | None = None) -> int:
    """Write what is missing into `golden_dir`; 1 if an older version has no golden file."""
    codec = Codec() if codec is None else codec
    missing_released = []
    for schema in codec.catalogue:
        path = golden_dir / golden_name(schema.full_name, schema.version)
        if path.exists():
            print(f"kept    {path.name}")
            continue
        if schema is not codec.catalogue.current(schema.full_name):
            missing_released.append(path.name)
            continue
        data = codec.encode(sample(BY_SCHEMA[schema.full_name]))
        with path.open("xb") as out:  # "x": fail rather than overwrite, even in a race
            out.write(data)
        print(f"wrote   {path.name} ({len(data)} bytes)")
    for name in missing_released:
        print(f"MISSING {name}: an older version has no golden file; restore it from git")
    return 1 if missing_released else 0


if __name__ == "__main__":
    sys.exit(main())
