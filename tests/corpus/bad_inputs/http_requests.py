"""HTTP requests from `http.yaml` recipes, for the approval service.

    method: GET          (the default) or POST, DELETE, ...
    path: /api/v1/...    with placeholders (below)
    as: NAME/ROLE        send `Authorization: Bearer <that principal's token>`;
                         `revoked` is a revoked approver's token; omit for no header
    headers: {k: v}      more headers (placeholders filled in); replace `as`'s header
    json: value          the body as JSON, Content-Type application/json
    pad: {field: n}      ...with these JSON fields set to n characters "x"
    body: text           the body as these UTF-8 bytes (no placeholders)
    body_hex: hex        the body as these bytes
    body_repeat: [[text, times], ...]   the body as these pieces, repeated and joined
    content_type: text   Content-Type for `body`, `body_hex` or `body_repeat`

Placeholders, filled in every string of `path`, `headers` and `json`: `{NAME/ROLE}` and
`{revoked}` are tokens; for each revision the test seeds (`awaiting`, `decided`,
`approved_once`), `{x}` is its API path and `{x.adapter}`, `{x.revision}`,
`{x.manifest_digest}`, `{x.report_digest}` its parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEYS = {"method", "path", "as", "headers", "json", "pad", "body", "body_hex", "body_repeat"}
KEYS |= {"content_type"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    content: bytes | None


def _fill(value: Any, places: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        # Longest first: `{awaiting.revision}` before `{awaiting}` could eat its prefix.
        for name in sorted(places, key=len, reverse=True):
            value = value.replace("{" + name + "}", places[name])
        return value
    if isinstance(value, list):
        return [_fill(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    return value


def build_request(recipe: Mapping[str, Any], places: Mapping[str, str]) -> Request:
    unknown = set(recipe) - KEYS
    if unknown:
        raise ValueError(f"unknown http recipe keys {sorted(unknown)}")
    headers: dict[str, str] = {}
    if "as" in recipe:
        headers["Authorization"] = "Bearer " + places[recipe["as"]]
    headers.update(_fill(recipe.get("headers", {}), places))
    content: bytes | None = None
    if "json" in recipe:
        body = _fill(recipe["json"], places)
        for name, size in recipe.get("pad", {}).items():
            body[name] = "x" * int(size)
        content = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif "body" in recipe:
        content = str(recipe["body"]).encode()
    elif "body_hex" in recipe:
        content = bytes.fromhex(recipe["body_hex"])
    elif "body_repeat" in recipe:
        content = b"".join(str(text).encode() * int(n) for text, n in recipe["body_repeat"])
    if "content_type" in recipe:
        headers["Content-Type"] = recipe["content_type"]
    return Request(
        str(recipe.get("method", "GET")), _fill(recipe["path"], places), headers, content
    )
