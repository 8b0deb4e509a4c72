"""The codec: single-object encoding, version resolution, and its one error type."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codec import HEADER_SIZE, MARKER, Codec, CodecError, from_record, to_record
from shared.events import (
    ALL_EVENTS,
    BY_SCHEMA,
    Actor,
    CanaryExpanded,
    Envelope,
    ExpandCanary,
    RevisionEvaluated,
    WeightsDeleted,
)
from shared.schemas import DEFAULT_SCHEMAS_DIR, CatalogueError, SchemaCatalogue
from tests.samples import envelope, sample

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WEIGHTS_DELETED_V1 = DEFAULT_SCHEMAS_DIR / "adapters.lifecycle.v1" / "WeightsDeleted.1.avsc"


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def write_schema(root: Path, namespace: str, file_name: str, schema: dict[str, Any]) -> Path:
    path = root / namespace / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema))
    return path


def weights_deleted_v1() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(WEIGHTS_DELETED_V1.read_text())
    return schema


def weights_deleted_v2() -> dict[str, Any]:
    schema = weights_deleted_v1()
    schema["fields"].append({"name": "reason", "type": "string", "default": "retention policy"})
    return schema


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightsDeletedV2:
    """What WeightsDeleted would look like after a compatible change (one defaulted field)."""

    SCHEMA: ClassVar[str] = WeightsDeleted.SCHEMA

    envelope: Envelope
    file_count: int
    bytes_freed: int
    reason: str = "retention policy"


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda cls: cls.__name__)
def test_every_event_class_survives_encode_then_decode(codec: Codec, cls: type[Any]) -> None:
    event = sample(cls)
    assert codec.decode(codec.encode(event)) == event


def test_encoding_is_marker_then_writer_fingerprint_then_body(codec: Codec) -> None:
    data = codec.encode(sample(ExpandCanary))
    current = codec.catalogue.current(ExpandCanary.SCHEMA)
    assert current is not None
    assert data[:2] == b"\xc3\x01" == MARKER
    assert data[2:HEADER_SIZE] == current.fingerprint
    assert len(data) > HEADER_SIZE


def test_crc64_avro_reference_matches_the_published_vector_for_null() -> None:
    # Avro's SchemaNormalization test vectors: "null" has fingerprint 0x63dd24e7cc258f8a.
    assert crc64_avro(b'"null"') == 0x63DD24E7CC258F8A


def test_fastavro_fingerprint_is_the_little_endian_crc64_avro_the_spec_requires() -> None:
    canonical = to_parsing_canonical_form("null")
    assert bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")) == bytes.fromhex("8a8f25cce724dd63")
    assert bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")) == (0x63DD24E7CC258F8A).to_bytes(
        8, "little"
    )


def test_every_catalogued_fingerprint_is_the_little_endian_crc_of_its_canonical_form(
    codec: Codec,
) -> None:
    for version in codec.catalogue:
        canonical = to_parsing_canonical_form(version.raw).encode()
        assert version.fingerprint == crc64_avro(canonical).to_bytes(8, "little"), version.path


def valid(codec: Codec) -> bytes:
    return codec.encode(sample(RevisionEvaluated))


BAD_MESSAGES: list[tuple[str, Callable[[bytes], Any], str]] = [
    ("empty", lambda ok: b"", "0 bytes, shorter than the 10-byte"),
    ("marker only", lambda ok: MARKER, "2 bytes, shorter than"),
    ("header cut short", lambda ok: ok[:9], "9 bytes, shorter than"),
    ("wrong marker", lambda ok: b"\xc3\x02" + ok[2:], "starts with c302, not the marker c301"),
    ("json, not avro", lambda ok: b'{"envelope": {"adapter": "x"}}', "starts with 7b22"),
    ("unknown fingerprint", lambda ok: MARKER + bytes(range(8)) + ok[10:], "0001020304050607"),
    ("truncated body", lambda ok: ok[:-1], "bad adapters.lifecycle.v1.RevisionEvaluated v1 body"),
    ("empty body", lambda ok: ok[:HEADER_SIZE], "EOFError"),
    ("garbage body", lambda ok: ok[:HEADER_SIZE] + b"\xff" * 40, "body"),
    ("invalid utf-8", lambda ok: ok[:HEADER_SIZE] + b"\x04\xff\xfe" + ok[13:], "UnicodeDecode"),
    ("trailing bytes", lambda ok: ok + b"\x00\x00\x00", "3 trailing bytes after the"),
    ("not bytes at all", lambda ok: ok.hex(), "expected bytes, got str"),
]


@pytest.mark.parametrize(
    ("case", "corrupt", "says"), BAD_MESSAGES, ids=[c[0] for c in BAD_MESSAGES]
)
@pytest.mark.parametrize("method", ["decode", "decode_writer"])
def test_bad_message_raises_codec_error_saying_what_is_wrong(
    codec: Codec, method: str, case: str, corrupt: Callable[[bytes], Any], says: str
) -> None:
    with pytest.raises(CodecError) as caught:
        getattr(codec, method)(corrupt(valid(codec)))
    assert says in str(caught.value), case


def test_errors_from_fastavro_stay_chained_as_the_cause(codec: Codec) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode(valid(codec)[:-1])
    assert isinstance(caught.value.__cause__, EOFError)


def naive(event: Any) -> Any:
    return dataclasses.replace(
        event, envelope=dataclasses.replace(event.envelope, occurred_at=datetime(2025, 1, 1))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NeverReleased:
    SCHEMA: ClassVar[str] = "adapters.lifecycle.v1.NeverReleased"

    file_count: int


BAD_EVENTS: list[tuple[str, Callable[[], Any], str]] = [
    ("not a dataclass", lambda: {"adapter": "x"}, "dict is not an event"),
    ("no schema file", lambda: NeverReleased(file_count=1), "no schema file for adapters"),
    ("naive datetime", lambda: naive(sample(WeightsDeleted)), "Envelope.occurred_at: naive"),
    ("string for a long", lambda: sample(WeightsDeleted, file_count="2"), "file_count: expected"),
    ("bool for a long", lambda: sample(WeightsDeleted, file_count=True), "got True"),
    ("float for a long", lambda: sample(WeightsDeleted, file_count=2.5), "got 2.5"),
    ("long overflow", lambda: sample(WeightsDeleted, bytes_freed=2**63), "does not fit"),
    ("none for required", lambda: sample(ExpandCanary, revision=None), "got None"),
    (
        "wrong nested record",
        lambda: sample(ExpandCanary, header=Actor(principal="a", role="b")),
        "expected CommandHeader, got Actor",
    ),
    ("int map key", lambda: sample(CanaryExpanded, evidence={1: "x"}), "evidence: expected str"),
    ("tuple for array", lambda: sample(CanaryExpanded, tenants=("a",)), "tenants: expected list"),
    ("lone surrogate", lambda: sample(ExpandCanary, revision="\ud800"), "cannot encode"),
]


@pytest.mark.parametrize(("case", "build", "says"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_bad_event_raises_codec_error_naming_the_field(
    codec: Codec, case: str, build: Callable[[], Any], says: str
) -> None:
    with pytest.raises(CodecError) as caught:
        codec.encode(build())
    assert says in str(caught.value), case


def test_a_non_utc_datetime_decodes_to_the_same_instant_in_utc(codec: Codec) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    event = sample(ExpandCanary)
    local = dataclasses.replace(
        event,
        header=dataclasses.replace(event.header, issued_at=datetime(2025, 3, 14, 15, tzinfo=ist)),
    )
    decoded = codec.decode(codec.encode(local))
    assert isinstance(decoded, ExpandCanary)
    assert decoded.header.issued_at == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert decoded.header.issued_at.utcoffset() == timedelta(0)


def test_decode_writer_returns_the_full_name_and_the_record_as_written(codec: Codec) -> None:
    event = sample(RevisionEvaluated)
    full_name, record = codec.decode_writer(codec.encode(event))
    assert full_name == "adapters.lifecycle.v1.RevisionEvaluated"
    assert record == to_record(event)


@pytest.fixture
def evolved(tmp_path: Path) -> Codec:
    """A codec whose catalogue has WeightsDeleted v1 and a compatible v2 with one new field."""
    write_schema(tmp_path, "adapters.lifecycle.v1", "WeightsDeleted.1.avsc", weights_deleted_v1())
    write_schema(tmp_path, "adapters.lifecycle.v1", "WeightsDeleted.2.avsc", weights_deleted_v2())
    return Codec(SchemaCatalogue.load(tmp_path), events={WeightsDeleted.SCHEMA: WeightsDeletedV2})


def test_an_event_written_with_an_old_version_reads_with_the_new_defaults(
    codec: Codec, evolved: Codec
) -> None:
    old = sample(WeightsDeleted)
    new = evolved.decode(codec.encode(old))
    assert isinstance(new, WeightsDeletedV2)
    assert (new.envelope, new.file_count, new.bytes_freed) == (old.envelope, 2, 167_772_160)
    assert new.reason == "retention policy"


def test_decode_writer_does_not_resolve_an_old_version_against_the_new_one(
    codec: Codec, evolved: Codec
) -> None:
    full_name, record = evolved.decode_writer(codec.encode(sample(WeightsDeleted)))
    assert full_name == WeightsDeleted.SCHEMA
    assert "reason" not in record


def test_the_evolved_codec_writes_its_newest_version(codec: Codec, evolved: Codec) -> None:
    event = WeightsDeletedV2(
        envelope=envelope("deleted"), file_count=1, bytes_freed=10, reason="manual purge"
    )
    data = evolved.encode(event)
    assert evolved.decode(data) == event
    with pytest.raises(CodecError, match=data[2:HEADER_SIZE].hex()):
        codec.decode(data)  # a reader that predates v2 cannot know its fingerprint


def test_the_default_catalogue_has_one_current_version_per_event_class(codec: Codec) -> None:
    assert codec.catalogue.names() == sorted(BY_SCHEMA)


BAD_CATALOGUES: list[tuple[str, list[tuple[str, str, Callable[[], Any]]], str]] = [
    (
        "same fingerprint twice",
        [
            ("adapters.lifecycle.v1", "WeightsDeleted.1.avsc", weights_deleted_v1),
            (
                "adapters.lifecycle.v1",
                "WeightsDeleted.2.avsc",
                lambda: weights_deleted_v1() | {"doc": "only the doc changed"},
            ),
        ],
        "have the same fingerprint",
    ),
    (
        "name differs from the file name",
        [("adapters.lifecycle.v1", "WeightsPurged.1.avsc", weights_deleted_v1)],
        "declares 'adapters.lifecycle.v1.WeightsDeleted' but its path says "
        "'adapters.lifecycle.v1.WeightsPurged'",
    ),
    (
        "namespace differs from the directory",
        [("adapters.lifecycle.v2", "WeightsDeleted.1.avsc", weights_deleted_v1)],
        "its path says 'adapters.lifecycle.v2.WeightsDeleted'",
    ),
    (
        "a released version is missing",
        [
            ("adapters.lifecycle.v1", "WeightsDeleted.1.avsc", weights_deleted_v1),
            ("adapters.lifecycle.v1", "WeightsDeleted.3.avsc", weights_deleted_v2),
        ],
        "versions [1, 3] are not 1..2",
    ),
    (
        "no version in the file name",
        [("adapters.lifecycle.v1", "WeightsDeleted.avsc", weights_deleted_v1)],
        "file name is not <Name>.<version>.avsc",
    ),
    (
        "not a record",
        [("adapters.lifecycle.v1", "WeightsDeleted.1.avsc", lambda: {"type": "string"})],
        "top-level schema must be a record",
    ),
    (
        "not valid avro",
        [
            (
                "adapters.lifecycle.v1",
                "WeightsDeleted.1.avsc",
                lambda: weights_deleted_v1() | {"fields": [{"name": "x", "type": "nope"}]},
            )
        ],
        "not a valid Avro schema",
    ),
]


@pytest.mark.parametrize(
    ("case", "files", "says"), BAD_CATALOGUES, ids=[c[0] for c in BAD_CATALOGUES]
)
def test_catalogue_refuses_inconsistent_schema_files(
    tmp_path: Path, case: str, files: list[tuple[str, str, Callable[[], Any]]], says: str
) -> None:
    for namespace, file_name, schema in files:
        write_schema(tmp_path, namespace, file_name, schema())
    with pytest.raises(CatalogueError) as caught:
        SchemaCatalogue.load(tmp_path)
    assert says in str(caught.value), case


def test_catalogue_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "adapters.lifecycle.v1").mkdir()
    (tmp_path / "adapters.lifecycle.v1" / "WeightsDeleted.1.avsc").write_text("{not json")
    with pytest.raises(CatalogueError, match="not a valid Avro schema"):
        SchemaCatalogue.load(tmp_path)


def test_catalogue_refuses_a_schemas_directory_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        SchemaCatalogue.load(tmp_path / "missing")


def test_schemas_directory_comes_from_the_environment_only_through_from_env(tmp_path: Path) -> None:
    shutil.copytree(WEIGHTS_DELETED_V1.parent, tmp_path / "adapters.lifecycle.v1")
    for version in (tmp_path / "adapters.lifecycle.v1").glob("RevisionApproved.*.avsc"):
        version.unlink()
    env = {"ADAPTERS_SCHEMAS_DIR": str(tmp_path)}
    assert RevisionEvaluated.SCHEMA in SchemaCatalogue.from_env(env).names()
    assert "adapters.lifecycle.v1.RevisionApproved" not in Codec.from_env(env).catalogue.names()
    assert len(Codec.from_env({}).catalogue.names()) == len(ALL_EVENTS)


def test_to_record_gives_plain_nested_dicts_and_lists() -> None:
    record = to_record(sample(RevisionEvaluated))
    assert record["envelope"]["actor"] == {"principal": "svc-registry", "role": "service"}
    assert record["metrics"][1] == {
        "name": "p95_latency_ms",
        "value": 182.5,
        "baseline": None,
        "threshold": "<= 250",
        "passed": True,
    }


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda cls: cls.__name__)
def test_from_record_inverts_to_record(cls: type[Any]) -> None:
    event = sample(cls)
    assert from_record(cls, to_record(event)) == event


def test_from_record_fills_dataclass_defaults_for_absent_optional_fields() -> None:
    record = to_record(sample(ExpandCanary))
    del record["header"]["reason"]
    assert from_record(ExpandCanary, record).header.reason == ""


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda r: r | {"surplus": 1}, "unknown fields ['surplus']"),
        (lambda r: {k: v for k, v in r.items() if k != "revision"}, "missing fields ['revision']"),
        (lambda r: r | {"header": "alice"}, "CommandHeader: expected a record, got str"),
        (lambda r: r | {"traffic_percent": "25"}, "ExpandCanary.traffic_percent: expected int"),
    ],
    ids=["unknown field", "missing field", "record is a string", "wrong type"],
)
def test_from_record_refuses_a_record_that_does_not_fit_the_class(
    change: Callable[[dict[str, Any]], dict[str, Any]], says: str
) -> None:
    with pytest.raises(CodecError) as caught:
        from_record(ExpandCanary, change(to_record(sample(ExpandCanary))))
    assert says in str(caught.value)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Any value of a declared event type, drawn from the same type hints the codec reads."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return st.none() | strategy_for(inner)
    if origin is list:
        return st.lists(strategy_for(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), strategy_for(args[1]), max_size=3)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = get_type_hints(hint)
        fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(hint)}
        return st.builds(hint, **fields)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=12),
        int: st.integers(-(2**63), 2**63 - 1),
        float: st.floats(allow_nan=False),
        bool: st.booleans(),
        datetime: st.datetimes(
            min_value=datetime(1900, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
        ),
    }
    return simple[hint]


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda cls: cls.__name__)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_well_typed_event_survives_encode_then_decode(
    codec: Codec, cls: type, data: st.DataObject
) -> None:
    event = data.draw(strategy_for(cls))
    assert codec.decode(codec.encode(event)) == event


@FUZZ
@given(data=st.binary(max_size=80))
def test_arbitrary_bytes_raise_nothing_but_codec_error(codec: Codec, data: bytes) -> None:
    for read in (codec.decode, codec.decode_writer):
        with pytest.raises(CodecError):
            read(data)


@FUZZ
@given(name=st.sampled_from(sorted(BY_SCHEMA)), body=st.binary(max_size=200))
def test_arbitrary_body_after_a_valid_header_raises_nothing_but_codec_error(
    codec: Codec, name: str, body: bytes
) -> None:
    current = codec.catalogue.current(name)
    assert current is not None
    for read in (codec.decode, codec.decode_writer):
        with contextlib.suppress(CodecError):
            read(MARKER + current.fingerprint + body)


@FUZZ
@given(cls=st.sampled_from(ALL_EVENTS), at=st.integers(min_value=0), xor=st.integers(1, 255))
def test_a_flipped_body_byte_raises_nothing_but_codec_error(
    codec: Codec, cls: type, at: int, xor: int
) -> None:
    data = bytearray(codec.encode(sample(cls)))
    data[HEADER_SIZE + at % (len(data) - HEADER_SIZE)] ^= xor
    with contextlib.suppress(CodecError):
        codec.decode(bytes(data))


@FUZZ
@given(cls=st.sampled_from(ALL_EVENTS), data=st.data())
def test_every_truncation_of_a_valid_encoding_is_a_codec_error(
    codec: Codec, cls: type, data: st.DataObject
) -> None:
    encoded = codec.encode(sample(cls))
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    for read in (codec.decode, codec.decode_writer):
        with pytest.raises(CodecError):
            read(encoded[:cut])


@FUZZ
@given(
    cls=st.sampled_from(ALL_EVENTS),
    at=st.integers(min_value=0),
    inserted=st.binary(max_size=9),
    removed=st.integers(0, 9),
)
def test_bytes_inserted_or_removed_in_a_valid_encoding_raise_nothing_but_codec_error(
    codec: Codec, cls: type, at: int, inserted: bytes, removed: int
) -> None:
    data = codec.encode(sample(cls))
    i = at % (len(data) + 1)
    mutated = data[:i] + inserted + data[i + removed :]
    for read in (codec.decode, codec.decode_writer):
        with contextlib.suppress(CodecError):
            read(mutated)


@pytest.mark.parametrize(
    "sample",
    sorted((Path(__file__).resolve().parent.parent / "data" / "golden").glob("*.bin")),
    ids=lambda p: p.stem,
)
def test_decode_both_is_decode_writer_and_decode_of_every_released_version(sample: Path) -> None:
    """The auditor's one-read path agrees with the two reads it replaces, for current and
    older writer schemas alike."""
    codec = Codec.from_env()
    data = sample.read_bytes()
    full_name, written, event = codec.decode_both(data)
    assert (full_name, written) == codec.decode_writer(data)
    assert event == codec.decode(data)
