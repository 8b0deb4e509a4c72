"""The one factory for a caused event's envelope: ids derived as every service derived them
by hand, the cause and the correlation carried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.events import Actor, Envelope, caused_envelope

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ACTOR = Actor(principal="validator", role="service")
CAUSE = Envelope(
    event_id="c1",
    adapter="support-bot",
    revision="sha256:r1",
    environment="",
    seq=7,
    prev_hash="p",
    hash="h",
    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    actor=Actor(principal="ingest", role="service"),
    causation_id="c0",
    correlation_id="trained-1",
)


@pytest.mark.parametrize(
    ("event_type", "environment", "event_id"),
    [
        # pinned: these ids are already on the log, so the derivation may never change
        ("RevisionValidated", "", "3e74c4df-454d-54b3-abc8-d680b7a7b091"),
        ("RevisionEvaluated", "prod", "e1ddd575-1bd2-50cd-abf1-3d7bf50ce6a7"),
    ],
)
def test_caused_by_derives_the_id_from_the_cause_type_and_environment(
    event_type: str, environment: str, event_id: str
) -> None:
    envelope = Envelope.caused_by(
        CAUSE, event_type=event_type, actor=ACTOR, occurred_at=AT, environment=environment
    )
    assert envelope == Envelope(
        event_id=event_id,
        adapter="support-bot",
        revision="sha256:r1",
        environment=environment,
        occurred_at=AT,
        actor=ACTOR,
        causation_id="c1",
        correlation_id="trained-1",
    )


def test_caused_by_leaves_the_chain_fields_for_the_registry_to_assign() -> None:
    envelope = Envelope.caused_by(
        CAUSE, event_type="RevisionValidated", actor=ACTOR, occurred_at=AT
    )
    assert (envelope.seq, envelope.prev_hash, envelope.hash) == (0, "", "")


@pytest.mark.parametrize(
    ("event_type", "discriminator", "environment", "event_id"),
    [
        ("RevisionValidated", "", "", "3e74c4df-454d-54b3-abc8-d680b7a7b091"),
        ("RevisionActivated", "r2", "prod", "e641d003-c9ad-54ce-9757-edfe07f7b05d"),
    ],
)
def test_a_discriminator_tells_apart_two_events_of_one_type_from_one_cause(
    event_type: str, discriminator: str, environment: str, event_id: str
) -> None:
    envelope = caused_envelope(
        cause_id="c1",
        correlation_id="corr",
        adapter="a",
        revision="r2",
        event_type=event_type,
        discriminator=discriminator,
        environment=environment,
        actor=ACTOR,
        occurred_at=AT,
    )
    assert (envelope.event_id, envelope.causation_id, envelope.correlation_id) == (
        event_id,
        "c1",
        "corr",
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"event_type": "RevisionValidated"}, {"event_type": "RevisionRejected"}),
        ({"environment": "prod"}, {"environment": "staging"}),
        ({"discriminator": "r1"}, {"discriminator": "r2"}),
        ({"cause_id": "c1"}, {"cause_id": "c2"}),
    ],
)
def test_events_that_differ_in_what_the_id_derives_from_get_different_ids(
    first: dict[str, str], second: dict[str, str]
) -> None:
    common = {
        "cause_id": "c1",
        "correlation_id": "corr",
        "adapter": "a",
        "revision": "r",
        "event_type": "RevisionActivated",
    }

    def build(overrides: dict[str, str]) -> Envelope:
        fields = {**common, **overrides}
        return caused_envelope(**fields, actor=ACTOR, occurred_at=AT)

    assert build(first).event_id != build(second).event_id
    assert build(first).event_id == build(first).event_id  # a redelivered cause: the same id
