"""The log against the registry: every disagreement is named, the relay's lag is not one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.audit import verify
from shared.lifecycle import RevisionStatus, State
from shared.pointers import EnvironmentPointer, fold
from shared.reconcile import disagreements
from tests.unit.test_audit import ALPHA, BETA, PROD, REV_A, TOPIC, clean_log, entries


def registry_as_the_log_says() -> dict[str, Any]:
    report = verify(entries(clean_log()))
    ledger = fold([e.event for e in report.accepted if e.event is not None])
    heads = {}
    for entry in report.accepted:
        assert entry.event is not None
        env = entry.event.envelope
        heads[env.adapter] = (env.seq, env.hash, env.seq)
    return {
        "accepted": report.accepted,
        "ledger": ledger,
        "heads": heads,
        "statuses": dict(ledger.statuses),
        "pointers": dict(ledger.pointers),
    }


def found(state: dict[str, Any]) -> list[str]:
    problems = disagreements(
        TOPIC,
        state["accepted"],
        state["ledger"],
        state["heads"],
        state["statuses"],
        state["pointers"],
    )
    assert all(p.code == "registry_disagrees" for p in problems)
    return [p.message for p in problems]


def test_a_registry_that_tells_the_same_story_agrees() -> None:
    assert found(registry_as_the_log_says()) == []


def test_the_relays_lag_is_not_a_disagreement() -> None:
    state = registry_as_the_log_says()
    seq, _, published = state["heads"][ALPHA]
    state["heads"][ALPHA] = (seq + 2, "f" * 64, published)  # committed, not yet published
    assert found(state) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda s: s["heads"].update({ALPHA: (13, s["heads"][ALPHA][1], 13)}), "never committed"),
        (lambda s: s["heads"].update({ALPHA: (16, "f" * 64, 16)}), "dropped tail"),
        (lambda s: s["heads"].update({ALPHA: (14, "f" * 64, 14)}), "was rewritten"),
        (
            lambda s: s["statuses"].update({(ALPHA, REV_A): RevisionStatus(State.REJECTED)}),
            "the registry holds rejected",
        ),
        (
            lambda s: s["pointers"].update(
                {(BETA, "staging"): replace(EnvironmentPointer(), active=REV_A)}
            ),
            "environment 'staging'",
        ),
        (lambda s: s["pointers"].pop((ALPHA, PROD)), "environment 'production'"),
    ],
    ids=["forged-append", "dropped-tail", "rewritten-head", "status", "pointer", "lost-pointer"],
)
def test_each_disagreement_is_named(change: Any, says: str) -> None:
    state = registry_as_the_log_says()
    change(state)
    [message] = found(state)
    assert says in message
