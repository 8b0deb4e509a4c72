"""The Avro codec: events to single-object-encoded bytes and back, resolving every kept version."""

from __future__ import annotations

import dataclasses
import functools
import io
import types
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints

from fastavro import schemaless_reader, schemaless_writer

from shared.events import BY_SCHEMA
from shared.schemas import SchemaCatalogue, SchemaVersion
from shared.settings import SchemaSettings

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

Convert = Callable[[Any], Any]


class CodecError(Exception):
    """Bytes or an event the codec cannot handle; the message says what was wrong."""


class Codec:
    """Encodes with the current version of each schema; decodes any kept version."""

    def __init__(
        self,
        catalogue: SchemaCatalogue | None = None,
        events: Mapping[str, type] | None = None,
    ) -> None:
        self.catalogue = SchemaCatalogue.load() if catalogue is None else catalogue
        self._events = dict(BY_SCHEMA if events is None else events)

    @classmethod
    def from_settings(cls, schemas: SchemaSettings) -> Codec:
        """A codec over the schemas `schemas` names (default: the repository's)."""
        return cls(SchemaCatalogue.load(schemas.directory))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Codec:
        """A codec over the schemas in `$ADAPTERS_SCHEMAS_DIR` (default: the repository's)."""
        return cls.from_settings(SchemaSettings.from_env(env))

    @staticmethod
    def default() -> Codec:
        """The codec over the repository's own schemas, loaded on first use, then shared."""
        return _default_codec()

    def encode(self, event: object) -> bytes:
        """`C3 01`, the current writer schema's fingerprint, then the Avro body."""
        full_name = getattr(type(event), "SCHEMA", None)
        if not isinstance(full_name, str):
            raise CodecError(f"{type(event).__name__} is not an event: it has no SCHEMA")
        writer = self.catalogue.current(full_name)
        if writer is None:
            raise CodecError(f"no schema file for {full_name}")
        record = to_record(event)
        out = io.BytesIO()
        out.write(MARKER + writer.fingerprint)
        try:
            schemaless_writer(out, writer.parsed, record)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise CodecError(f"cannot encode {full_name}: {exc}") from exc
        return out.getvalue()

    def decode(self, data: bytes) -> object:
        """The event in `data`, read with the current schema of its name (old versions resolved)."""
        writer = self._writer_of(data)
        cls = self._events.get(writer.full_name)
        if cls is None:
            raise CodecError(f"no event class for {writer.full_name}")
        reader = self.catalogue.current(writer.full_name) or writer
        return _decoded(cls)(self._read(data, writer, reader))

    def decode_both(self, data: bytes) -> tuple[str, dict[str, Any], object]:
        """`decode_writer` and `decode` together, the body read once when its writer schema
        is the current one (the auditor's path: it hashes the written record and reads the
        event)."""
        writer = self._writer_of(data)
        cls = self._events.get(writer.full_name)
        if cls is None:
            raise CodecError(f"no event class for {writer.full_name}")
        written = self._read(data, writer, writer)
        reader = self.catalogue.current(writer.full_name) or writer
        record = written if reader is writer else self._read(data, writer, reader)
        return writer.full_name, written, _decoded(cls)(record)

    def decode_writer(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """The full name and the record exactly as its writer wrote it (no resolution)."""
        writer = self._writer_of(data)
        return writer.full_name, self._read(data, writer, writer)

    def _writer_of(self, data: bytes) -> SchemaVersion:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise CodecError(f"expected bytes, got {type(data).__name__}")
        if len(data) < HEADER_SIZE:
            raise CodecError(
                f"message is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte "
                "single-object header (marker C3 01 and an 8-byte fingerprint)"
            )
        if bytes(data[:2]) != MARKER:
            raise CodecError(f"message starts with {bytes(data[:2]).hex()}, not the marker c301")
        fp = bytes(data[2:HEADER_SIZE])
        writer = self.catalogue.by_fingerprint(fp)
        if writer is None:
            raise CodecError(f"unknown writer schema fingerprint {fp.hex()}")
        return writer

    @staticmethod
    def _read(data: bytes, writer: SchemaVersion, reader: SchemaVersion) -> dict[str, Any]:
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            # The bytes are untrusted and fastavro signals bad ones with whatever its parsing
            # step hits (EOFError, IndexError, OverflowError, UnicodeDecodeError, ...): any
            # failure here means bad input, so all of them become a chained CodecError.
            record = schemaless_reader(
                body, writer.parsed, None if reader is writer else reader.parsed
            )
        except Exception as exc:
            raise CodecError(
                f"bad {writer.full_name} v{writer.version} body: {type(exc).__name__}: {exc}"
            ) from exc
        trailing = len(data) - body.tell()
        if trailing:
            raise CodecError(f"{trailing} trailing bytes after the {writer.full_name} body")
        if not isinstance(record, dict):
            raise CodecError(f"{writer.full_name} body is not a record")
        return record


@functools.cache
def _default_codec() -> Codec:
    return Codec()


def to_record(event: object) -> dict[str, Any]:
    """The event as the plain dict fastavro writes; checks every value against its type."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise CodecError(f"{type(event).__name__} is not an event dataclass")
    result: dict[str, Any] = _outbound(type(event))(event)
    return result


def from_record(cls: type, record: Mapping[str, Any]) -> Any:
    """The instance of `cls` a record (from `to_record` or the reader) describes."""
    return _inbound(cls)(record)


@functools.cache
def _outbound(cls: type) -> Convert:
    plan = [(f.name, _convert(hint, f"{cls.__name__}.{f.name}", False)) for f, hint in _hints(cls)]

    def convert(obj: Any) -> dict[str, Any]:
        if not isinstance(obj, cls):
            raise CodecError(f"expected {cls.__name__}, got {type(obj).__name__}")
        return {name: conv(getattr(obj, name)) for name, conv in plan}

    return convert


@functools.cache
def _inbound(cls: type) -> Convert:
    plan = [(f.name, _convert(hint, f"{cls.__name__}.{f.name}", True)) for f, hint in _hints(cls)]
    known = frozenset(name for name, _ in plan)
    required = frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )

    def convert(record: Any) -> Any:
        if not isinstance(record, Mapping):
            raise CodecError(f"{cls.__name__}: expected a record, got {type(record).__name__}")
        keys = record.keys()
        if not keys <= known or not required <= keys:
            unknown, missing = sorted(keys - known), sorted(required - keys)
            raise CodecError(f"{cls.__name__}: unknown fields {unknown}, missing fields {missing}")
        return cls(**{name: conv(record[name]) for name, conv in plan if name in record})

    return convert


@functools.cache
def _decoded(cls: type) -> Convert:
    """`_inbound` for records fastavro just read against the class's own schema: the reader
    already guarantees every primitive's type (strings, longs in range, aware timestamps),
    and the schema contract test keeps the fields equal to the class's, so only nested
    records become dataclasses; the auditor's decode spends its time here."""
    plan = [(f.name, _nested(hint)) for f, hint in _hints(cls)]

    def convert(record: Any) -> Any:
        return cls(
            **{
                name: record[name] if conv is None else conv(record[name])
                for name, conv in plan
                if name in record
            }
        )

    return convert


def _nested(hint: Any) -> Convert | None:
    """The converter a decoded value of `hint` needs; None where it is used as read."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        inner = _nested(next(a for a in args if a is not type(None)))
        return None if inner is None else (lambda v: None if v is None else inner(v))
    if origin is list:
        item = _nested(args[0])
        return None if item is None else (lambda v: [item(x) for x in v])
    if origin is dict:
        value = _nested(args[1])
        return None if value is None else (lambda v: {k: value(x) for k, x in v.items()})
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _decoded(hint)
    return None


def _hints(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    hints = get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _convert(hint: Any, label: str, inbound: bool) -> Convert:
    """A converter for one declared type, built once per class, so a decode only runs it."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"{label}: only `X | None` unions map to Avro, not {hint}")
        conv = _convert(inner[0], label, inbound)
        return lambda v: None if v is None else conv(v)
    if origin is list:
        item = _convert(args[0], f"{label}[]", inbound)
        return lambda v: [item(x) for x in _check(v, list, label)]
    if origin is dict:
        value = _convert(args[1], f"{label}{{}}", inbound)
        return lambda v: {
            _check(k, str, label): value(x) for k, x in _check(v, dict, label).items()
        }
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _inbound(hint) if inbound else _outbound(hint)
    if hint is datetime:
        return lambda v: _check_datetime(v, label)
    if hint is bool:
        return lambda v: _check(v, bool, label)
    if hint is int:
        return lambda v: _check_long(v, label)
    if hint is float:
        return lambda v: float(_check(v, int | float, label))
    if hint is str:
        return lambda v: _check(v, str, label)
    raise TypeError(f"{label}: no Avro mapping for {hint!r}")


def _check(value: Any, expected: Any, label: str) -> Any:
    # bool is an int subclass: let a flag pass as a number and it silently becomes 0 or 1.
    if isinstance(value, expected) and (expected is bool or not isinstance(value, bool)):
        return value
    raise CodecError(f"{label}: expected {getattr(expected, '__name__', expected)}, got {value!r}")


def _check_long(value: Any, label: str) -> int:
    number: int = _check(value, int, label)
    if not _LONG_MIN <= number <= _LONG_MAX:
        raise CodecError(f"{label}: {number} does not fit in an Avro long")
    return number


def _check_datetime(value: Any, label: str) -> datetime:
    moment: datetime = _check(value, datetime, label)
    # fastavro would take a naive datetime as UTC; refuse to guess what the writer meant.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CodecError(f"{label}: naive datetime {moment.isoformat()} (need a timezone)")
    return moment
