"""Lifecycle events for any adapter, revision and environment, built from the samples."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, TypeVar

from shared.events import (
    RevisionActivated,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from tests.samples import sample

T = TypeVar("T")


def lifecycle(cls: type[T], adapter: str, revision: str, environment: str = "", **fields: Any) -> T:
    """A sample `cls` event about `adapter@revision`, with a fresh event id."""
    base: Any = sample(cls)
    envelope = dataclasses.replace(
        base.envelope,
        event_id=str(uuid.uuid4()),
        adapter=adapter,
        revision=revision,
        environment=environment,
        seq=0,
        prev_hash="",
        hash="",
    )
    return dataclasses.replace(base, envelope=envelope, **fields)  # type: ignore[no-any-return]


def to_validated(adapter: str, revision: str) -> list[Any]:
    return [
        lifecycle(RevisionRegistered, adapter, revision),
        lifecycle(RevisionValidated, adapter, revision),
    ]


def to_approved(adapter: str, revision: str, environment: str) -> list[Any]:
    return [
        *to_validated(adapter, revision),
        lifecycle(RevisionEvaluated, adapter, revision, environment),
        lifecycle(RevisionApproved, adapter, revision, environment),
    ]


def to_active(adapter: str, revision: str, environment: str) -> list[Any]:
    return [
        *to_approved(adapter, revision, environment),
        lifecycle(RevisionActivated, adapter, revision, environment),
    ]
