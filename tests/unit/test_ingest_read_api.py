"""Ingest's read API (ADR 0022): a trainer reads the verdict of their own submission and
the catalogue with their bearer token; another trainer's submission is 403, one ingest has
not handled is 404, and every other role is refused as on the submit path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.web import make_app
from shared.catalogue import BaseModelSpec, EnvironmentSpec
from shared.codec import Codec
from shared.events import AdapterTrained, Finding
from shared.findings import FindingCode, fix_for
from shared.registry.principals import Principal, Role
from shared.verdicts import Check, Verdict, duplicate

TOKENS = {
    "apt_tia": Principal("tia", Role.TRAINER),
    "apt_tom": Principal("tom", Role.TRAINER),
    "apt_amy": Principal("amy", Role.APPROVER),
}
MINE, DUPLICATE_ID, QUEUED = (
    "0b7e4f6e-2c1d-4e55-9a3f-1f2e3d4c5b6a",
    "1b7e4f6e-2c1d-4e55-9a3f-1f2e3d4c5b6a",
    "2b7e4f6e-2c1d-4e55-9a3f-1f2e3d4c5b6a",
)
ESCAPES = Finding(
    code=FindingCode.PATH_ESCAPES_ROOT,
    severity="error",
    message="artifact path '/tmp/x' is outside the allowed roots (/srv/incoming)",
    evidence={"path": "/tmp/x", "allowed_roots": "/srv/incoming"},
)
VERDICTS = {
    MINE: Verdict(
        event_id=MINE,
        adapter="bot",
        revision="sha256:r",
        submitter="tia",
        state="rejected",
        checks=(
            Check(stage="ingest", event="RevisionRejected", passed=False, findings=(ESCAPES,)),
        ),
    ),
    DUPLICATE_ID: duplicate(DUPLICATE_ID),
}
BASE = BaseModelSpec(
    model_id="tiny-llama",
    revision="sha256:b1",
    architecture="LlamaForCausalLM",
    modules={"model.layers.0.self_attn.q_proj": (64, 64)},
    vocab_size=128,
    hidden_size=64,
    tokenizer_revision="tok-1",
    tokenizer_hash="sha256:tok",
    chat_template_hash="sha256:tpl",
)
ENV = EnvironmentSpec(
    name="staging",
    base_model_id="tiny-llama",
    base_model_revision="sha256:b1",
    tokenizer_hash="sha256:tok",
    chat_template_hash="sha256:tpl",
)


class FakeReads:
    async def verdict(self, event_id: str) -> Verdict | None:
        return VERDICTS.get(event_id)

    async def base_models(self) -> list[BaseModelSpec]:
        return [BASE]

    async def environments(self) -> list[EnvironmentSpec]:
        return [ENV]


async def lookup(token: str) -> Principal | None:
    return TOKENS.get(token)


async def no_publish(event: AdapterTrained) -> tuple[int, int]:
    raise AssertionError("a read never publishes")


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = make_app(lookup, no_publish, Codec.from_env(), FakeReads())
    async with TestClient(TestServer(app)) as client:
        yield client


async def get(client: TestClient, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get(path, headers=headers)
    return response.status, await response.json()


async def test_a_trainer_reads_their_verdict_with_every_finding_and_its_fix(
    client: TestClient,
) -> None:
    status, body = await get(client, f"/submissions/{MINE}", "apt_tia")
    assert status == 200, body
    assert (body["state"], body["submitter"], body["revision"]) == ("rejected", "tia", "sha256:r")
    [finding] = body["checks"][0]["findings"]
    assert finding["code"] == "path_escapes_root"
    assert finding["evidence"] == {"path": "/tmp/x", "allowed_roots": "/srv/incoming"}
    assert finding["fix"] == fix_for("path_escapes_root") and finding["meaning"]


@pytest.mark.parametrize(
    ("event_id", "token", "status", "detail"),
    [
        (MINE, "apt_tom", 403, "is tia's: a trainer reads only their own"),
        (MINE, None, 401, "bearer token"),
        (MINE, "apt_forged", 401, "unknown or revoked"),
        (MINE, "apt_amy", 403, "not trainer"),
        (QUEUED, "apt_tia", 404, "is ingested yet"),
        ("not-a-uuid", "apt_tia", 400, "not a submission's event id"),
    ],
)
async def test_a_verdict_read_is_refused_precisely(
    client: TestClient, event_id: str, token: str | None, status: int, detail: str
) -> None:
    got, body = await get(client, f"/submissions/{event_id}", token)
    assert got == status and detail in body["detail"]


async def test_a_duplicate_submission_answers_its_state(client: TestClient) -> None:
    status, body = await get(client, f"/submissions/{DUPLICATE_ID}", "apt_tom")
    assert status == 200 and body["state"] == "duplicate"


async def test_a_trainer_reads_the_catalogue_a_submission_is_checked_against(
    client: TestClient,
) -> None:
    status, body = await get(client, "/catalogue", "apt_tia")
    assert status == 200
    [base] = body["base_models"]
    assert (base["model_id"], base["revision"], base["tokenizer_hash"]) == (
        BASE.model_id,
        BASE.revision,
        BASE.tokenizer_hash,
    )
    [env] = body["environments"]
    assert (env["name"], env["tokenizer_hash"]) == (ENV.name, ENV.tokenizer_hash)
    assert (await get(client, "/catalogue", "apt_amy"))[0] == 403
