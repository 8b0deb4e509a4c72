"""Deterministic event ids: a redelivered cause yields the same id, so duplicates are visible."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("0b5c3f4e-8a2d-5e71-9c6b-2f1d7a4e9b30")


def derive_event_id(cause_id: str, event_type: str, environment: str = "") -> str:
    """The id of the `event_type` event caused by `cause_id` (in `environment`)."""
    return str(uuid.uuid5(NAMESPACE, f"{cause_id}/{event_type}/{environment}"))
