"""A service's changes are made only for a principal proven by its bearer token: a missing,
malformed, unknown or other-role token is refused, and the header carries the token's
principal whatever name the request states."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shared.registry.principals import Principal, Role
from shared.web import authorized, header_for, json_body, json_response

TOKENS = {"apt_admin": Principal("ada", Role.ADMIN), "apt_trainer": Principal("tia", Role.TRAINER)}


async def lookup(token: str) -> Principal | None:
    return TOKENS.get(token)


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async def change(request: web.Request) -> web.Response:
        principal = await authorized(request, lookup, (Role.ADMIN,))
        body = await json_body(request)
        header = header_for(principal, adapter="a", environment="e", reason=str(body))
        return json_response({"principal": header.actor.principal, "role": header.actor.role})

    app = web.Application()
    app.router.add_put("/change", change)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("apt_admin", 401),  # not a bearer scheme
        ("Bearer ", 401),
        ("Bearer apt_forged", 401),
        ("Basic apt_admin", 401),
        ("Bearer apt_trainer", 403),
    ],
)
async def test_a_change_without_an_admins_token_is_refused(
    client: TestClient, authorization: str | None, status: int
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.put("/change", json={"principal": "ada"}, headers=headers)
    assert response.status == status
    body = await response.json()
    assert body["status"] == status and body["detail"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_actor_is_the_tokens_principal_never_the_name_in_the_request(
    client: TestClient,
) -> None:
    response = await client.put(
        "/change",
        json={"principal": "somebody-else", "role": "admin"},
        headers={"Authorization": "Bearer apt_admin"},
    )
    assert response.status == 200
    assert await response.json() == {"principal": "ada", "role": "admin"}


async def test_a_body_that_is_not_a_json_object_is_a_400(client: TestClient) -> None:
    headers = {"Authorization": "Bearer apt_admin"}
    assert (await client.put("/change", data=b"[1]", headers=headers)).status == 400
    assert (await client.put("/change", data=b"{", headers=headers)).status == 400
