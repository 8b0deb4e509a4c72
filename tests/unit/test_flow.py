"""The flow declared in code: each service's FLOW matches its handler map, the map covers the
lifecycle, and the README's services table and diagram are generated from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.flow import (
    DIAGRAM_BEGIN,
    DIAGRAM_END,
    FLOWS,
    TABLE_BEGIN,
    TABLE_END,
    _topic_of,
    diagram,
    services_table,
)
from services.activator.handlers import handlers as activator_handlers
from services.approval.handlers import handlers as approval_handlers
from services.archiver.handlers import handlers as archiver_handlers
from services.gpu_evaluator.handlers import handlers as evaluator_handlers
from services.ingest.handlers import handlers as ingest_handlers
from services.validator.handlers import handlers as validator_handlers
from shared.events import AdapterTrained, RevisionEvaluated, RevisionRegistered
from shared.flow import ServiceFlow, Topic, handled_by
from shared.lifecycle import TRANSITIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
REGENERATE = "README drifted from the code: run `python -m infra.flow --write README.md`"
UNUSED: Any = None  # building a handler map only closes over its deps

HANDLER_MAPS = {
    "ingest": ingest_handlers,
    "validator": validator_handlers,
    "gpu_evaluator": evaluator_handlers,
    "approval": lambda deps: approval_handlers(deps, deps),
    "activator": activator_handlers,
    "archiver": archiver_handlers,
}


def _block(begin: str, end: str) -> str:
    return README.partition(begin)[2].partition(end)[0].strip()


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.service)
def test_each_services_flow_declares_exactly_what_its_handler_map_handles(
    flow: ServiceFlow,
) -> None:
    assert set(HANDLER_MAPS[flow.service](UNUSED)) == set(flow.handles)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.service)
def test_a_service_consumes_every_topic_its_handled_messages_arrive_on(flow: ServiceFlow) -> None:
    assert {_topic_of(t) for t in flow.handles} == set(flow.consumes)


def test_every_lifecycle_event_is_committed_by_some_service() -> None:
    emitted = {t for f in FLOWS for t in f.emits}
    assert {event for (_, event) in TRANSITIONS} <= emitted


def test_the_events_nobody_reacts_to_are_facts_for_auditors_alone() -> None:
    handled = {t for f in FLOWS for t in f.handles}
    unhandled = {t.__name__ for f in FLOWS for t in f.emits} - {t.__name__ for t in handled}
    # Nobody reacts to these: they are facts for the audit log and the read models' end.
    assert unhandled == {
        "RevisionRejected",
        "RevisionEvaluationFailed",
        "CanaryStarted",
        "CanaryExpanded",
        "RevisionActivated",
        "RevisionRolledBack",
        "ManifestArchived",
        "WeightsDeleted",
        "RolloutFailed",
        "RolloutStalled",
    }


def test_the_flow_routes_a_submission_to_ingest_and_a_registration_to_validator_and_approval() -> (
    None
):
    assert handled_by(FLOWS, AdapterTrained) == ["ingest"]
    assert handled_by(FLOWS, RevisionRegistered) == ["validator", "approval"]
    assert handled_by(FLOWS, RevisionEvaluated) == ["approval"]


def test_a_flow_names_the_commits_it_did_not_declare() -> None:
    ingest = next(f for f in FLOWS if f.service == "ingest")
    assert ingest.undeclared([object()]) == ["object"]


def test_the_readme_services_table_is_generated_from_the_flow() -> None:
    assert _block(TABLE_BEGIN, TABLE_END) == services_table(), REGENERATE


def test_the_readme_diagram_is_generated_from_the_flow() -> None:
    assert _block(DIAGRAM_BEGIN, DIAGRAM_END) == diagram(), REGENERATE


def test_topics_resolve_to_the_configured_names() -> None:
    from shared.settings import KernelSettings

    settings = KernelSettings(service="t", lifecycle_topic="x.lifecycle")
    assert Topic.LIFECYCLE.name_in(settings) == "x.lifecycle"
