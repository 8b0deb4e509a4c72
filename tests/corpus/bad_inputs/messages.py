"""Kafka record values from `avro_bytes.yaml` recipes.

A recipe is either literal bytes or a sample event's encoding changed step by step:

    value: null          no value at all (a tombstone)
    hex: "c301..."       exactly these bytes
    event: Name          start from `sample(Name)` encoded (default AdapterTrained)
    raw_fields: {f: v}   ...written with field f's logical type stripped, holding v
    header_of: Name      replace the 10-byte header with that event's marker and fingerprint
    header_hex: hex      replace the 10-byte header with these bytes
    fingerprint: hex     replace the 8 fingerprint bytes
    splice: {at, remove, hex}   at body offset `at`, drop `remove` bytes, insert `hex`
    keep: n              keep the first n bytes
    drop_last: n         drop the last n bytes
    append: hex          add bytes at the end

Steps apply in the order listed above, whatever order the YAML writes them in.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from typing import Any

from fastavro import parse_schema, schemaless_writer

from shared.codec import HEADER_SIZE, MARKER, Codec
from shared.events import ALL_EVENTS
from tests.samples import sample

EVENTS = {cls.__name__: cls for cls in ALL_EVENTS}
KEYS = {"value", "hex", "event", "raw_fields", "header_of", "fingerprint", "splice", "keep"}
KEYS |= {"header_hex", "drop_last", "append"}


def _encode(codec: Codec, name: str, raw_fields: Mapping[str, Any]) -> bytes:
    event = sample(EVENTS[name])
    if not raw_fields:
        return codec.encode(event)
    writer = codec.catalogue.current(event.SCHEMA)
    assert writer is not None
    schema = copy.deepcopy(writer.raw)
    for field in schema["fields"]:
        if field["name"] in raw_fields and isinstance(field["type"], dict):
            field["type"] = field["type"]["type"]  # e.g. timestamp-micros -> long
    _, record = codec.decode_writer(codec.encode(event))
    out = io.BytesIO()
    out.write(MARKER + writer.fingerprint)
    schemaless_writer(out, parse_schema(schema), {**record, **raw_fields})
    return out.getvalue()


def message_value(recipe: Mapping[str, Any], codec: Codec) -> bytes | None:
    """The record value the recipe describes (None for a record without a value)."""
    unknown = set(recipe) - KEYS
    if unknown:
        raise ValueError(f"unknown avro_bytes recipe keys {sorted(unknown)}")
    if "value" in recipe:
        assert recipe["value"] is None, "value: only null is a recipe"
        return None
    if "hex" in recipe:
        return bytes.fromhex(recipe["hex"])
    data = _encode(codec, recipe.get("event", "AdapterTrained"), recipe.get("raw_fields") or {})
    if "header_of" in recipe:
        data = codec.encode(sample(EVENTS[recipe["header_of"]]))[:HEADER_SIZE] + data[HEADER_SIZE:]
    if "header_hex" in recipe:
        data = bytes.fromhex(recipe["header_hex"]) + data[HEADER_SIZE:]
    if "fingerprint" in recipe:
        data = MARKER + bytes.fromhex(recipe["fingerprint"]) + data[HEADER_SIZE:]
    if "splice" in recipe:
        at = HEADER_SIZE + int(recipe["splice"]["at"])
        cut = at + int(recipe["splice"].get("remove", 0))
        data = data[:at] + bytes.fromhex(recipe["splice"].get("hex", "")) + data[cut:]
    if "keep" in recipe:
        data = data[: int(recipe["keep"])]
    if "drop_last" in recipe:
        data = data[: -int(recipe["drop_last"])]
    return data + bytes.fromhex(recipe.get("append", ""))
