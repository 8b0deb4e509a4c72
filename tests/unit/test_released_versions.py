"""Every released schema version's golden bytes still decode with today's reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.codec import HEADER_SIZE, Codec
from shared.events import BY_SCHEMA, WeightsDeleted
from shared.schemas import DEFAULT_SCHEMAS_DIR, SchemaCatalogue
from tests.data.golden.make_golden import GOLDEN_DIR, golden_name, main

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.bin"))
# What make_golden.py wrote into every golden file: pinned here, not imported from
# tests/samples.py, so editing the samples cannot make an old golden file "pass".
ADAPTER = "support-summarizer"
REVISION = "sha256:" + "3f2a" * 16
PREVIOUS_REVISION = "sha256:" + "9c1e" * 16
# The event is about the revision that lost its place, not the one that took it.
REVISION_OF = {"adapters.lifecycle.v1.RevisionSuperseded": PREVIOUS_REVISION}
# Every released command names its adapter.
ADAPTER_OF: dict[str, str] = {}


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def split_name(path: Path) -> tuple[str, int]:
    full_name, version, _ = path.name.rsplit(".", 2)
    return full_name, int(version)


def identity(event: Any) -> tuple[str, str]:
    """(adapter, revision) wherever this kind of event keeps them."""
    if hasattr(event, "envelope"):
        return event.envelope.adapter, event.envelope.revision
    if hasattr(event, "header"):
        return event.header.adapter, getattr(event, "revision", REVISION)
    return event.adapter, REVISION


def test_golden_files_and_released_versions_are_the_same_set(codec: Codec) -> None:
    released = {golden_name(v.full_name, v.version) for v in codec.catalogue}
    assert {path.name for path in GOLDEN_FILES} == released


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.name)
def test_golden_sample_decodes_with_the_current_reader(codec: Codec, path: Path) -> None:
    full_name, version = split_name(path)
    data = path.read_bytes()
    writer = codec.catalogue.by_fingerprint(data[2:HEADER_SIZE])
    assert writer is not None, f"{path.name}: fingerprint {data[2:HEADER_SIZE].hex()} unknown"
    assert (writer.full_name, writer.version) == (full_name, version)

    event = codec.decode(data)

    assert type(event) is BY_SCHEMA[full_name]
    expected = (ADAPTER_OF.get(full_name, ADAPTER), REVISION_OF.get(full_name, REVISION))
    assert identity(event) == expected
    assert codec.decode(codec.encode(event)) == event


def evolved_schemas(root: Path) -> Path:
    """A schemas dir with WeightsDeleted at v1 and a compatible v2."""
    source = DEFAULT_SCHEMAS_DIR / "adapters.lifecycle.v1" / "WeightsDeleted.1.avsc"
    schema = json.loads(source.read_text())
    (root / "adapters.lifecycle.v1").mkdir(parents=True)
    (root / "adapters.lifecycle.v1" / "WeightsDeleted.1.avsc").write_text(json.dumps(schema))
    schema["fields"].append({"name": "reason", "type": "string", "default": ""})
    (root / "adapters.lifecycle.v1" / "WeightsDeleted.2.avsc").write_text(json.dumps(schema))
    return root


def test_make_golden_writes_only_the_missing_current_versions(tmp_path: Path) -> None:
    kept = tmp_path / golden_name(WeightsDeleted.SCHEMA, 1)
    kept.write_bytes(b"released long ago")

    assert main(tmp_path, Codec(SchemaCatalogue.load(evolved_schemas(tmp_path / "s")))) == 0

    assert kept.read_bytes() == b"released long ago"
    assert (tmp_path / golden_name(WeightsDeleted.SCHEMA, 2)).stat().st_size > HEADER_SIZE


def test_make_golden_never_overwrites_a_golden_file(tmp_path: Path) -> None:
    codec = Codec()
    for older in (v for v in codec.catalogue if v is not codec.catalogue.current(v.full_name)):
        released = golden_name(older.full_name, older.version)  # what earlier releases wrote
        shutil.copy(GOLDEN_DIR / released, tmp_path / released)
    assert main(tmp_path, codec) == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    for path in tmp_path.iterdir():
        path.write_bytes(b"tampered")

    assert main(tmp_path, codec) == 0

    assert len(before) == len(codec.catalogue)
    assert {path.read_bytes() for path in tmp_path.iterdir()} == {b"tampered"}


def test_make_golden_fails_when_an_older_version_has_no_golden_file(tmp_path: Path) -> None:
    codec = Codec(SchemaCatalogue.load(evolved_schemas(tmp_path / "s")))
    assert main(tmp_path, codec) == 1
    assert not (tmp_path / golden_name(WeightsDeleted.SCHEMA, 1)).exists()
