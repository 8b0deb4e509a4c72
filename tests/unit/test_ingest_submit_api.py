"""Ingest's submit API: a submission is taken only from a principal holding a trainer
token, and its submitter is that principal, never a name the body states; anything else
is a precise refusal and nothing reaches the trained topic."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.web import make_app
from shared.codec import Codec
from shared.events import AdapterTrained, RevisionRegistered
from shared.registry.principals import Principal, Role
from shared.trainer_client import AVRO
from tests.samples import sample

CODEC = Codec.from_env()
TOKENS = {
    "apt_tia": Principal("tia", Role.TRAINER),
    "apt_amy": Principal("amy", Role.APPROVER),
    "apt_ada": Principal("ada", Role.ADMIN),
}


async def lookup(token: str) -> Principal | None:
    return TOKENS.get(token)


def submission(**changes: Any) -> AdapterTrained:
    event: AdapterTrained = sample(AdapterTrained)
    return dataclasses.replace(event, **({"submitter": ""} | changes))


@pytest.fixture
async def ingest() -> AsyncIterator[tuple[TestClient, list[AdapterTrained]]]:
    published: list[AdapterTrained] = []

    async def publish(event: AdapterTrained) -> tuple[int, int]:
        published.append(event)
        return 2, len(published) - 1

    async with TestClient(TestServer(make_app(lookup, publish, CODEC))) as client:
        yield client, published


def post(client: TestClient, body: bytes, token: str | None, content_type: str = AVRO) -> Any:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/submissions", data=body, headers=headers)


async def test_a_trainers_submission_is_published_with_the_trainer_as_submitter(
    ingest: tuple[TestClient, list[AdapterTrained]],
) -> None:
    client, published = ingest
    event = submission()
    response = await post(client, CODEC.encode(event), "apt_tia")
    assert response.status == 202, await response.text()
    assert await response.json() == {
        "event_id": event.event_id,
        "adapter": event.adapter,
        "submitter": "tia",
        "partition": 2,
        "offset": 0,
    }
    assert published == [dataclasses.replace(event, submitter="tia")]


@pytest.mark.parametrize(
    ("body", "token", "content_type", "status", "detail"),
    [
        (submission(), None, AVRO, 401, "bearer token"),
        (submission(), "apt_forged", AVRO, 401, "unknown or revoked"),
        (submission(), "apt_amy", AVRO, 403, "amy acts as approver, not trainer"),
        (submission(), "apt_ada", AVRO, 403, "not trainer"),  # not even an admin
        # the submitter is never typed: naming another principal is refused
        (submission(submitter="carol"), "apt_tia", AVRO, 403, "not 'carol'"),
        (submission(), "apt_tia", "application/json", 415, AVRO),
        (b"\x00garbage", "apt_tia", AVRO, 400, "undecodable submission"),
        (sample(RevisionRegistered), "apt_tia", AVRO, 400, "expected AdapterTrained"),
        (submission(adapter="Support Bot"), "apt_tia", AVRO, 400, "invalid_adapter_name"),
        (submission(event_id="42"), "apt_tia", AVRO, 400, "invalid_event_id"),
    ],
)
async def test_a_submission_is_refused_precisely_and_nothing_is_published(
    ingest: tuple[TestClient, list[AdapterTrained]],
    body: Any,
    token: str | None,
    content_type: str,
    status: int,
    detail: str,
) -> None:
    client, published = ingest
    data = body if isinstance(body, bytes) else CODEC.encode(body)
    response = await post(client, data, token, content_type)
    assert response.status == status
    assert detail in (await response.json())["detail"]
    assert published == []


async def test_a_body_larger_than_a_submission_can_be_is_refused(
    ingest: tuple[TestClient, list[AdapterTrained]],
) -> None:
    client, published = ingest
    response = await post(client, b"\x00" * (2 << 20), "apt_tia")
    assert response.status == 413
    assert published == []
