"""The activator's command API: a rollout command is issued only for an operator or admin
proven by a bearer token, with the token's principal as its actor whatever the body says,
and a bad body is a precise 400, never a command on the topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.activator.web import add_write_api
from shared.events import AbortCanary, ExpandCanary, PromoteRevision, RollbackRevision
from shared.registry.principals import Principal, Role

TOKENS = {
    "apt_op": Principal("olivia", Role.OPERATOR),
    "apt_admin": Principal("ada", Role.ADMIN),
    "apt_approver": Principal("bob", Role.APPROVER),
}
REVISION = "sha256:" + "ab" * 32
BODY = {"adapter": "support-bot", "environment": "production", "reason": "release train"}


async def lookup(token: str) -> Principal | None:
    return TOKENS.get(token)


@pytest.fixture
async def issued() -> AsyncIterator[tuple[TestClient, list[tuple[Any, str]]]]:
    commands: list[tuple[Any, str]] = []

    async def issue(command: Any, key: str) -> None:
        commands.append((command, key))

    app = web.Application()
    add_write_api(app, deps=None, lookup=lookup, issue=issue)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        yield client, commands


@pytest.mark.parametrize(
    ("action", "extra", "kind"),
    [
        (
            "promote",
            {"revision": REVISION, "canary_percent": 10, "tenants": ["t1"]},
            PromoteRevision,
        ),
        ("expand", {"revision": REVISION, "traffic_percent": 50}, ExpandCanary),
        ("rollback", {}, RollbackRevision),
        ("rollback", {"to_revision": REVISION}, RollbackRevision),
        ("abort", {"revision": REVISION}, AbortCanary),
    ],
)
async def test_a_command_carries_the_tokens_principal_never_the_bodys(
    issued: tuple[TestClient, list[tuple[Any, str]]], action: str, extra: dict[str, Any], kind: type
) -> None:
    client, commands = issued
    body = BODY | extra | {"actor": {"principal": "root", "role": "admin"}}
    response = await client.post(
        f"/commands/{action}", json=body, headers={"Authorization": "Bearer apt_op"}
    )
    assert response.status == 202, await response.text()
    answer = await response.json()
    [(command, key)] = commands
    assert isinstance(command, kind) and key == "support-bot"
    assert (command.header.actor.principal, command.header.actor.role) == ("olivia", "operator")
    assert answer == {"command_id": command.header.command_id, "principal": "olivia"}
    assert command.header.reason == "release train"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer apt_forged", 401), ("Bearer apt_approver", 403)],
)
async def test_no_command_is_issued_without_an_operators_or_admins_token(
    issued: tuple[TestClient, list[tuple[Any, str]]], authorization: str | None, status: int
) -> None:
    client, commands = issued
    headers = {"Authorization": authorization} if authorization else {}
    body = BODY | {"revision": REVISION, "canary_percent": 10}
    response = await client.post("/commands/promote", json=body, headers=headers)
    assert response.status == status
    assert commands == []


@pytest.mark.parametrize(
    ("action", "body", "status", "detail"),
    [
        ("promote", BODY | {"canary_percent": 10}, 400, "revision must be a string"),
        ("promote", BODY | {"revision": REVISION, "canary_percent": "10"}, 400, "canary_percent"),
        (
            "promote",
            BODY | {"revision": REVISION, "canary_percent": 1, "tenants": "t"},
            400,
            "tenants",
        ),
        ("expand", BODY | {"revision": REVISION}, 400, "traffic_percent"),
        ("rollback", BODY | {"to_revision": 7}, 400, "to_revision"),
        ("rollback", {"environment": "production"}, 400, "adapter must be a string"),
        ("restart", BODY, 404, "no command 'restart'"),
    ],
)
async def test_a_bad_command_is_a_precise_refusal_and_issues_nothing(
    issued: tuple[TestClient, list[tuple[Any, str]]],
    action: str,
    body: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    client, commands = issued
    response = await client.post(
        f"/commands/{action}", json=body, headers={"Authorization": "Bearer apt_admin"}
    )
    assert response.status == status
    assert detail in (await response.json())["detail"]
    assert commands == []
