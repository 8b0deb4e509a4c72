"""The event catalogue: one frozen dataclass per schema in `schemas/`."""

from __future__ import annotations

from typing import ClassVar, Protocol

from shared.events.commands import (
    AbortCanary,
    CommandHeader,
    ExpandCanary,
    PlaceLegalHold,
    PromoteRevision,
    ReleaseLegalHold,
    RollbackRevision,
    SetCanaryAnalysis,
    SetReplicas,
    SetRetentionPolicy,
)
from shared.events.common import (
    Actor,
    BaseModelRef,
    Envelope,
    Finding,
    MetricResult,
    caused_envelope,
)
from shared.events.revision import (
    CanaryExpanded,
    CanaryStarted,
    ManifestArchived,
    RevisionActivated,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
    RolloutFailed,
    RolloutStalled,
    WeightsDeleted,
)
from shared.events.trained import AdapterTrained, DataScope, TrainingRecipe


class Event(Protocol):
    """What every top-level event class has: the Avro full name of its schema."""

    SCHEMA: ClassVar[str]


LIFECYCLE_EVENTS: tuple[type[Event], ...] = (
    RevisionRegistered,
    RevisionValidated,
    RevisionRejected,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionApproved,
    RevisionDenied,
    CanaryStarted,
    CanaryExpanded,
    RevisionActivated,
    RevisionSuperseded,
    RevisionRolledBack,
    RevisionExpired,
    ManifestArchived,
    WeightsDeleted,
    RevisionQuarantined,
    RolloutFailed,
    RolloutStalled,
)
COMMANDS: tuple[type[Event], ...] = (
    PromoteRevision,
    ExpandCanary,
    RollbackRevision,
    AbortCanary,
)
ALL_EVENTS: tuple[type[Event], ...] = (AdapterTrained, *LIFECYCLE_EVENTS, *COMMANDS)
BY_SCHEMA: dict[str, type[Event]] = {cls.SCHEMA: cls for cls in ALL_EVENTS}

__all__ = [
    "ALL_EVENTS",
    "BY_SCHEMA",
    "COMMANDS",
    "LIFECYCLE_EVENTS",
    "AbortCanary",
    "Actor",
    "AdapterTrained",
    "BaseModelRef",
    "CanaryExpanded",
    "CanaryStarted",
    "CommandHeader",
    "DataScope",
    "Envelope",
    "Event",
    "ExpandCanary",
    "Finding",
    "ManifestArchived",
    "MetricResult",
    "PlaceLegalHold",
    "PromoteRevision",
    "ReleaseLegalHold",
    "RevisionActivated",
    "RevisionApproved",
    "RevisionDenied",
    "RevisionEvaluated",
    "RevisionEvaluationFailed",
    "RevisionExpired",
    "RevisionQuarantined",
    "RevisionRegistered",
    "RevisionRejected",
    "RevisionRolledBack",
    "RevisionSuperseded",
    "RevisionValidated",
    "RollbackRevision",
    "RolloutFailed",
    "RolloutStalled",
    "SetCanaryAnalysis",
    "SetReplicas",
    "SetRetentionPolicy",
    "TrainingRecipe",
    "WeightsDeleted",
    "caused_envelope",
]
