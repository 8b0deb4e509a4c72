"""Who may call what, over the approval service's real HTTP server, PostgreSQL and Kafka:
every operation and page against every role, anonymous callers, sessions, tokens; and a
service that cannot listen does not start."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from shared.registry.principals import hash_token
from tests.integration.test_approval_stack import (
    AS_ROLE,
    ROLES,
    STALE,
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
    assert_problem,
)

READERS = {"approver", "operator", "auditor", "admin"}

# What each role may do, written out here rather than read from the service's own table,
# so a change to the service's policy must be a change to this test too.
API_MATRIX: list[tuple[str, str, str, set[str], int]] = [
    # (name, method, path template, roles allowed, status when allowed)
    ("me", "GET", "/api/v1/me", set(ROLES), 200),
    ("signing key", "GET", "/api/v1/signing-key", set(ROLES), 200),
    ("pending", "GET", "/api/v1/environments/staging/pending", READERS, 200),
    ("evidence", "GET", "{api}", READERS, 200),
    ("decide (on stale evidence)", "POST", "{api}/decisions", {"approver"}, 409),
]
PAGE_MATRIX: list[tuple[str, str, str, set[str], int]] = [
    ("pending page", "GET", "/", READERS, 200),
    ("revision page", "GET", "{page}", READERS, 200),
    ("decision form (on stale evidence)", "POST", "{page}/decision", {"approver"}, 409),
]


@pytest.fixture(scope="module")
async def matrix_revision(approval: ApprovalStack) -> Seeded:
    seeded = await approval.seed(f"matrix-{approval.stack.token}")
    approval.wait_pending(seeded)
    return seeded


def _call(
    client: httpx.Client, method: str, template: str, seeded: Seeded, *, form: bool = False
) -> httpx.Response:
    path = template.format(api=seeded.api_path, page=seeded.page_path)
    if method == "GET":
        return client.get(path)
    ballot = seeded.ballot(report_digest=STALE)
    return client.post(path, data=ballot) if form else client.post(path, json=ballot)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), API_MATRIX)
def test_every_api_operation_answers_each_role_as_the_policy_says(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    role: str,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    with approval.client(*AS_ROLE[role]) as client:
        response = _call(client, method, template, matrix_revision)
    if role in allowed:
        assert response.status_code == status, f"{name} as {role}: {response.text}"
    else:
        assert_problem(response, 403, "forbidden-role")


@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), API_MATRIX)
@pytest.mark.parametrize("credentials", ["none", "unknown token", "basic auth"])
def test_every_api_operation_answers_401_to_a_caller_without_a_valid_token(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    credentials: str,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    headers = {
        "none": {},
        "unknown token": {"Authorization": "Bearer apt_not-a-real-token"},
        "basic auth": {"Authorization": "Basic Ym9iOmJvYg=="},
    }[credentials]
    with httpx.Client(base_url=approval.base_url, headers=headers) as client:
        response = _call(client, method, template, matrix_revision)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_anonymous_caller_gets_401_before_its_malformed_body_is_even_read(
    approval: ApprovalStack,
    matrix_revision: Seeded,
) -> None:
    with httpx.Client(base_url=approval.base_url) as client:
        response = client.post(
            matrix_revision.api_path + "/decisions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), PAGE_MATRIX)
def test_every_page_answers_each_role_as_the_policy_says(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    role: str,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    with approval.page_client(approval.session(*AS_ROLE[role])) as client:
        response = _call(client, method, template, matrix_revision, form=True)
    expected = status if role in allowed else 403
    assert response.status_code == expected, f"{name} as {role}: {response.text[:300]}"
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(("name", "method", "template", "allowed", "status"), PAGE_MATRIX)
def test_every_page_sends_a_visitor_without_a_session_to_the_login_form(
    approval: ApprovalStack,
    matrix_revision: Seeded,
    name: str,
    method: str,
    template: str,
    allowed: set[str],
    status: int,
) -> None:
    with approval.page_client() as client:
        response = _call(client, method, template, matrix_revision, form=True)
    assert (response.status_code, response.headers["location"]) == (303, "/login"), name


def test_logging_in_sets_an_http_only_strict_cookie_and_a_bad_token_is_refused(
    approval: ApprovalStack,
) -> None:
    with approval.page_client() as client:
        refused = client.post("/login", data={"token": "apt_wrong"})
        accepted = client.post("/login", data={"token": approval.token("bob", "approver")})
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    cookie = accepted.headers["set-cookie"].lower()
    assert "approval_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert approval.token("bob", "approver").lower() not in cookie  # a session, not the token


def test_a_form_posted_from_another_origin_is_refused(
    approval: ApprovalStack,
    matrix_revision: Seeded,
) -> None:
    with approval.page_client(approval.session("bob", "approver")) as client:
        for action in ("/decision", "/withdraw"):
            response = client.post(
                matrix_revision.page_path + action,
                data=matrix_revision.ballot(),
                headers={"Origin": "http://evil.example"},
            )
            assert response.status_code == 403, action
            assert "a form from http://evil.example may not post here" in response.text
        logout = client.post("/logout", headers={"Origin": "http://evil.example"})
        assert logout.status_code == 403
        assert client.get(matrix_revision.page_path).status_code == 200  # still logged in
    assert matrix_revision.revision in _pending(approval, matrix_revision)  # nothing decided


def _pending(approval: ApprovalStack, seeded: Seeded) -> list[str]:
    with approval.client("audrey") as client:
        listed = client.get(f"/api/v1/environments/{seeded.environment}/pending").json()
    return [r["revision"] for r in listed["revisions"]]


LINKS = re.compile(r"""\b(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)


def test_no_page_loads_anything_from_another_origin_and_each_forbids_scripts(
    approval: ApprovalStack, matrix_revision: Seeded
) -> None:
    with approval.page_client() as anonymous:
        pages = {"login": anonymous.get("/login"), "docs": anonymous.get("/docs")}
        css = anonymous.get("/static/approval.css")
    with approval.page_client(approval.session("bob", "approver")) as client:
        pages |= {
            "pending": client.get("/"),
            "revision": client.get(matrix_revision.page_path),
            "missing": client.get("/environments/staging"),
        }
    assert pages["docs"].status_code == 404
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "<form" in pages["revision"].text and "<svg" in pages["revision"].text
    for name, response in pages.items():
        assert response.headers["content-type"].startswith("text/html"), name
        policy = response.headers["content-security-policy"]
        for directive in ("default-src 'none'", "script-src 'none'", "style-src 'self'"):
            assert directive in policy, (name, policy)
        assert "unsafe" not in policy and "<script" not in response.text.lower(), name
        for link in LINKS.findall(response.text):
            assert link.startswith("/") and not link.startswith("//"), (name, link)


async def test_the_session_table_keeps_hashes_and_a_session_ends_at_logout_expiry_or_revocation(
    approval: ApprovalStack,
) -> None:
    token = approval.add_principal("pia", "auditor")
    pool = approval.registry.pool

    def page_status(session: str) -> int:
        with approval.page_client(session) as client:
            return client.get("/").status_code

    # The table holds neither the session id nor the token, only their hashes.
    session = approval.session("pia", "auditor")
    rows = [dict(r) for r in await pool.fetch("SELECT * FROM approval_sessions")]
    assert rows and all(session not in str(r) and token not in str(r) for r in rows)
    assert page_status(session) == 200

    # Logout deletes the row: the same cookie, replayed, is a logged-out visitor.
    with approval.page_client(session) as client:
        assert client.post("/logout").status_code == 303
    assert page_status(session) == 303

    # Past its expiry the session is over, whatever the cookie's own max-age says.
    session = approval.session("pia", "auditor")
    await pool.execute(
        "UPDATE approval_sessions SET expires_at = now() - interval '1 second'"
        " WHERE token_hash = $1",
        hash_token(token),
    )
    assert page_status(session) == 303

    # Revoking the principal ends its sessions at once.
    session = approval.session("pia", "auditor")
    assert page_status(session) == 200
    approval.stack.adapterctl("principal", "revoke", "pia")
    assert page_status(session) == 303


def test_a_revoked_token_is_refused_from_then_on(approval: ApprovalStack) -> None:
    approval.add_principal("rita", "auditor")
    with approval.client("rita", "auditor") as client:
        assert client.get("/api/v1/me").json() == {"name": "rita", "role": "auditor"}
        approval.stack.adapterctl("principal", "revoke", "rita")
        assert_problem(client.get("/api/v1/me"), 401, "unauthenticated")
    listed = approval.stack.adapterctl("principal", "list").stdout
    assert "rita" in listed and "auditor" in listed


def test_a_second_token_for_an_active_principal_is_refused_until_it_is_revoked(
    approval: ApprovalStack,
) -> None:
    approval.add_principal("sam", "operator")
    again = approval.stack.adapterctl("principal", "add", "sam", "--role", "operator", check=False)
    assert again.returncode == 2 and "revoke it first" in again.stderr
    approval.stack.adapterctl("principal", "revoke", "sam", "--role", "operator")
    fresh = approval.add_principal("sam", "operator")
    with approval.client("sam", "operator") as client:
        assert client.get("/api/v1/me").json() == {"name": "sam", "role": "operator"}
    assert fresh.startswith("apt_")


def test_the_principal_list_never_shows_a_token(approval: ApprovalStack) -> None:
    listed = approval.stack.adapterctl("principal", "list", "--json").stdout
    assert all(token not in listed for token in approval.tokens.values())
    assert "token" not in listed


def test_a_taken_port_stops_the_service_at_start_with_the_reason(
    approval: ApprovalStack,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = approval.stack.start(
            "approval",
            APPROVAL_HTTP_PORT=str(taken.getsockname()[1]),
            APPROVAL_SIGNING_KEY=str(approval.key_path),
        )
        try:
            assert process.wait(timeout=90) != 0
        finally:
            approval.stack.processes["approval"] = approval.process
    assert "Address already in use" in approval.stack.log_of("approval")
