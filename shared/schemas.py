"""The schema catalogue: every released `.avsc` version, parsed once, indexed by fingerprint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fastavro.schema import (
    SchemaParseException,
    fingerprint,
    parse_schema,
    to_parsing_canonical_form,
)

from shared.settings import SchemaSettings

DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
_FILE_NAME = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.(?P<version>[1-9][0-9]*)\.avsc")


class CatalogueError(Exception):
    """The schema files themselves are inconsistent: a deployment defect, not bad input."""


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One released version of one schema, as loaded from `<namespace>/<Name>.<n>.avsc`."""

    full_name: str
    version: int
    path: Path
    fingerprint: bytes  # CRC-64-AVRO, little-endian: the 8 bytes after the C3 01 marker
    raw: dict[str, Any]  # the JSON as written (docs and defaults included)
    parsed: dict[str, Any]  # fastavro's parsed form, ready for the reader and the writer


def load_version(path: Path) -> SchemaVersion:
    """Read, parse and fingerprint one schema file, checking its name against the file's."""
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise CatalogueError(f"{path}: file name is not <Name>.<version>.avsc")
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("type") != "record":
            raise CatalogueError(f"{path}: top-level schema must be a record")
        # A fresh named_schemas per file: files are self-contained and several inline the
        # same nested record (Envelope, Actor), which one shared namespace would reject.
        parsed = cast(dict[str, Any], parse_schema(raw, named_schemas={}))
        canonical = to_parsing_canonical_form(raw)
    except (OSError, ValueError, TypeError, KeyError, SchemaParseException) as exc:
        raise CatalogueError(f"{path}: not a valid Avro schema: {exc}") from exc
    expected = f"{path.parent.name}.{match['name']}"
    if parsed["name"] != expected:
        raise CatalogueError(f"{path}: declares {parsed['name']!r} but its path says {expected!r}")
    return SchemaVersion(
        full_name=expected,
        version=int(match["version"]),
        path=path,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        raw=raw,
        parsed=parsed,
    )


class SchemaCatalogue:
    """Every kept version of every schema; the highest version of a name is its current one."""

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._by_name: dict[str, list[SchemaVersion]] = {}
        for version in versions:
            clash = self._by_fingerprint.get(version.fingerprint)
            if clash is not None:
                raise CatalogueError(
                    f"{version.path} and {clash.path} have the same fingerprint "
                    f"{version.fingerprint.hex()}: a reader could not tell them apart"
                )
            self._by_fingerprint[version.fingerprint] = version
            self._by_name.setdefault(version.full_name, []).append(version)
        for name, kept in self._by_name.items():
            kept.sort(key=lambda v: v.version)
            numbers = [v.version for v in kept]
            # A gap means a released version was deleted, and its events became unreadable.
            if numbers != list(range(1, len(kept) + 1)):
                raise CatalogueError(f"{name}: versions {numbers} are not 1..{len(kept)}")

    @classmethod
    def load(cls, directory: Path | None = None) -> SchemaCatalogue:
        root = DEFAULT_SCHEMAS_DIR if directory is None else directory
        if not root.is_dir():
            raise CatalogueError(f"{root}: schemas directory does not exist")
        return cls(load_version(path) for path in sorted(root.rglob("*.avsc")))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchemaCatalogue:
        return cls.load(SchemaSettings.from_env(env).directory)

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)

    def current(self, full_name: str) -> SchemaVersion | None:
        kept = self._by_name.get(full_name)
        return kept[-1] if kept else None

    def versions(self, full_name: str) -> list[SchemaVersion]:
        return list(self._by_name.get(full_name, ()))

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[SchemaVersion]:
        for name in self.names():
            yield from self._by_name[name]

    def __len__(self) -> int:
        return len(self._by_fingerprint)


def compatibility_problems(old: Any, new: Any, at: str = "") -> list[str]:
    """Why the raw schema `new` is not fully compatible with `old`: [] when it is.

    Deliberately stricter than Avro's resolution rules: a record field may be added or
    removed only with a default, and anything else keeps its type (no promotions).
    """
    where = at or "<root>"
    if isinstance(old, dict) and isinstance(new, dict) and old.get("type") == new.get("type"):
        if old["type"] == "record":
            return _record_problems(old, new, at)
        if old["type"] == "array":
            return compatibility_problems(old["items"], new["items"], f"{at}[]")
        if old["type"] == "map":
            return compatibility_problems(old["values"], new["values"], f"{at}{{}}")
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for a, b in zip(old, new, strict=True) for p in compatibility_problems(a, b, at)]
    if _strip(old) != _strip(new):
        return [f"{where}: type changed from {_strip(old)!r} to {_strip(new)!r}"]
    return []


def _record_problems(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> list[str]:
    if old.get("name") != new.get("name"):
        return [f"{at or '<root>'}: record renamed from {old.get('name')} to {new.get('name')}"]
    prefix = f"{at}." if at else ""
    problems: list[str] = []
    old_fields = {f["name"]: f for f in old["fields"]}
    new_fields = {f["name"]: f for f in new["fields"]}
    for name in new_fields.keys() - old_fields.keys():
        if "default" not in new_fields[name]:
            problems.append(f"{prefix}{name}: added without a default")
    for name in old_fields.keys() - new_fields.keys():
        if "default" not in old_fields[name]:
            problems.append(f"{prefix}{name}: removed but had no default")
    for name in old_fields.keys() & new_fields.keys():
        before, after = old_fields[name]["type"], new_fields[name]["type"]
        problems += compatibility_problems(before, after, f"{prefix}{name}")
    return sorted(problems)


def _strip(schema: Any) -> Any:
    """A schema without docs and defaults, which do not change the bytes on the wire."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in ("doc", "default")}
    if isinstance(schema, list):
        return [_strip(item) for item in schema]
    return schema
