"""The approval service's place in the flow: its lifecycle handlers feed its read model
(`projection.py`); its decisions come from the HTTP API (`deciding.py`)."""

from __future__ import annotations

from services.approval.projection import handlers
from shared.events import (
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.flow import ServiceFlow, Topic

__all__ = ["FLOW", "handlers"]

FLOW = ServiceFlow(
    service="approval",
    consumes=(Topic.LIFECYCLE,),
    handles=(
        RevisionRegistered,
        RevisionValidated,
        RevisionEvaluated,
        RevisionApproved,
        RevisionDenied,
    ),
    emits=(RevisionApproved, RevisionDenied),
    inputs=("HTTP API and page: ballots from approvers",),
)
