"""The HTTP layer without a database: authentication before anything else, the role
check, and one RFC 9457 problem format for every refusal the layer itself makes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from services.approval.app import create_app
from services.approval.auth import POLICY
from services.approval.deps import WebDeps
from services.approval.limits import MAX_BODY_BYTES
from services.approval.sessions import session_hash
from services.approval.settings import ApprovalSettings
from shared.registry.principals import Principal, Role, hash_token
from shared.settings import SettingsError
from shared.signing import Signer
from tests.fakes.approval import InMemorySessions

TOKENS = {f"apt_{role.value}": Principal(f"{role.value}-1", role) for role in Role}
PATH = "/api/v1/environments/staging/revisions/summarizer/sha256:" + "a" * 64
PROBLEM = "application/problem+json"


async def _lookup(token: str) -> Principal | None:
    return TOKENS.get(token)


async def _lookup_hash(digest: str) -> Principal | None:
    return next((p for t, p in TOKENS.items() if hash_token(t) == digest), None)


class NoEnvironments:
    """The catalogue of a fresh install: the pending page lists nothing."""

    async def environments(self) -> list[Any]:
        return []


def _deps(public_url: str = "") -> WebDeps:
    unused: Any = None  # the routes under test never reach the registry or the decider
    return WebDeps(
        registry=unused,
        readmodel=unused,
        catalogue=NoEnvironments(),  # type: ignore[arg-type]
        decider=unused,
        sources=unused,
        signer=Signer(Ed25519PrivateKey.generate()),
        lookup=_lookup,
        lookup_hash=_lookup_hash,
        sessions=InMemorySessions(),
        public_url=public_url,
    )


# What a browser on the page itself sends with each form post.
SAME_ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(_deps())
    with TestClient(app, follow_redirects=False, headers=SAME_ORIGIN) as test_client:
        yield test_client


def _as(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer apt_{role.value}"}


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == "urn:adapters:problem:" + slug
    assert {"title", "status", "detail", "instance"} <= set(body)
    return body


def test_the_policy_lets_only_approvers_decide_and_keeps_trainers_from_reading() -> None:
    assert POLICY["decide"] == {Role.APPROVER}
    assert Role.TRAINER not in POLICY["pending"] | POLICY["evidence"]
    assert POLICY["me"] == set(Role)


def test_a_request_without_a_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    _problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="approval"'
    unknown = client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert "unknown or revoked" in _problem(unknown, 401, "unauthenticated")["detail"]
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]


def test_an_unknown_route_under_the_api_is_401_anonymously_and_404_with_a_token(
    client: TestClient,
) -> None:
    _problem(client.get("/api/v1/nowhere"), 401, "unauthenticated")
    _problem(client.get("/api/v1/nowhere", headers=_as(Role.AUDITOR)), 404, "not-found")


def test_a_role_the_operation_does_not_allow_is_403_before_any_lookup(client: TestClient) -> None:
    body = _problem(
        client.get("/api/v1/environments/staging/pending", headers=_as(Role.TRAINER)),
        403,
        "forbidden-role",
    )
    assert "trainer-1 acts as trainer" in body["detail"]
    _problem(
        client.post(PATH + "/decisions", json={}, headers=_as(Role.ADMIN)), 403, "forbidden-role"
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"decision", "manifest_digest", "report_digest"}),
        (
            {"decision": "maybe", "manifest_digest": "x", "report_digest": "y", "z": 1},
            {"decision", "manifest_digest", "z"},
        ),
        (
            {
                "decision": "approve",
                "manifest_digest": "sha256:" + "0" * 64,
                "report_digest": "has spaces",
            },
            {"report_digest"},
        ),
        (
            {
                "decision": "approve",
                "manifest_digest": "sha256:" + "0" * 64,
                "report_digest": "r",
                "comment": "x" * 2001,
            },
            {"comment"},
        ),
    ],
)
def test_an_invalid_decision_body_is_422_naming_each_field(
    client: TestClient, body: dict[str, Any], fields: set[str]
) -> None:
    response = client.post(PATH + "/decisions", json=body, headers=_as(Role.APPROVER))
    errors = _problem(response, 422, "invalid-request")["errors"]
    assert {e["location"][-1] for e in errors} == fields


def test_a_body_that_is_not_json_at_all_is_422_too(client: TestClient) -> None:
    for content in (b"{not json", b"\xff\xfe\x00"):
        response = client.post(
            PATH + "/decisions",
            content=content,
            headers={**_as(Role.APPROVER), "content-type": "application/json"},
        )
        _problem(response, 422, "invalid-request")


def test_a_malformed_path_is_422_naming_the_parameter(client: TestClient) -> None:
    response = client.get(
        "/api/v1/environments/staging/revisions/Bad Name/sha256:zz", headers=_as(Role.AUDITOR)
    )
    errors = _problem(response, 422, "invalid-request")["errors"]
    assert {tuple(e["location"]) for e in errors} == {("path", "adapter"), ("path", "revision")}


def test_an_undocumented_method_is_405_as_a_problem_with_its_allow_header(
    client: TestClient,
) -> None:
    response = client.delete("/api/v1/me", headers=_as(Role.AUDITOR))
    _problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET"


def test_who_am_i_and_the_signing_key_answer_every_role(client: TestClient) -> None:
    for role in Role:
        assert client.get("/api/v1/me", headers=_as(role)).json() == {
            "name": f"{role.value}-1",
            "role": role.value,
        }
    key = client.get("/api/v1/signing-key", headers=_as(Role.TRAINER)).json()
    assert key["algorithm"] == "ed25519" and "BEGIN PUBLIC KEY" in key["public_key_pem"]


def test_pages_send_a_visitor_without_a_session_to_log_in_and_run_no_script(
    client: TestClient,
) -> None:
    assert client.get("/").headers["location"] == "/login"
    login = client.get("/login")
    assert login.status_code == 200 and "<script" not in login.text
    assert "default-src 'none'" in login.headers["content-security-policy"]
    refused = client.post("/login", data={"token": "nope"})
    assert refused.status_code == 401 and "unknown or revoked" in refused.text


def test_a_page_for_a_role_that_may_not_see_it_is_a_403_page(client: TestClient) -> None:
    client.post("/login", data={"token": "apt_trainer"})
    response = client.get("/")
    assert response.status_code == 403 and "text/html" in response.headers["content-type"]
    assert "acts as trainer" in response.text


def test_the_openapi_document_is_served_without_a_token(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_login_posted_from_another_origin_is_refused(client: TestClient) -> None:
    response = client.post(
        "/login", data={"token": "apt_approver"}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers
    same = client.post(
        "/login", data={"token": "apt_approver"}, headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 303 and "approval_session=" in same.headers["set-cookie"]


def test_a_body_not_sent_as_json_is_415_saying_what_to_send(client: TestClient) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**_as(Role.APPROVER), **({"content-type": content_type} if content_type else {})}
        response = client.post(
            PATH + "/decisions", content=b'{"decision": "deny"}', headers=headers
        )
        body = _problem(response, 415, "unsupported-media-type")
        assert "application/json" in body["detail"]


def test_a_body_above_the_limit_is_413_before_it_is_parsed(client: TestClient) -> None:
    oversize = b'{"comment": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    response = client.post(
        PATH + "/decisions",
        content=oversize,
        headers={**_as(Role.APPROVER), "content-type": "application/json"},
    )
    assert str(MAX_BODY_BYTES) in _problem(response, 413, "content-too-large")["detail"]
    anonymous = client.post(PATH + "/decisions", content=oversize)
    _problem(anonymous, 401, "unauthenticated")


# Issue #15, the page hardened: no third-party script, sessions instead of tokens in the
# cookie, Secure from the configured public URL, an origin check on every form.


def test_no_api_docs_page_loads_a_script_from_anywhere(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    for path in ("/login", "/openapi.json", "/healthz"):
        response = client.get(path)
        assert "<script" not in response.text, path
        assert "default-src 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff"


def _session(client: TestClient, token: str) -> str:
    response = client.post("/login", data={"token": token})
    assert response.status_code == 303, response.text
    return str(client.cookies["approval_session"])


def test_the_cookie_names_a_session_never_the_token(client: TestClient) -> None:
    response = client.post("/login", data={"token": "apt_approver"})
    cookie = response.headers["set-cookie"]
    assert "apt_approver" not in cookie
    assert "max-age=28800" in cookie.lower() and "httponly" in cookie.lower()
    session = str(client.cookies["approval_session"])
    assert len(session) >= 43 and session != "apt_approver"
    sessions: InMemorySessions = client.app.state.deps.sessions  # type: ignore[attr-defined]
    assert all("apt_approver" not in str(row) for row in sessions.rows.items())


def test_a_session_ends_when_it_expires_or_its_principal_is_revoked(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trainer's session reaches the page's role check (403): it is signed in.
    _session(client, "apt_trainer")
    assert client.get("/").status_code == 403
    sessions: InMemorySessions = client.app.state.deps.sessions  # type: ignore[attr-defined]
    for key, (digest, _) in list(sessions.rows.items()):
        sessions.rows[key] = (digest, datetime(2020, 1, 1, tzinfo=UTC))
    assert client.get("/").headers["location"] == "/login"  # expired

    _session(client, "apt_trainer")
    assert client.get("/").status_code == 403
    monkeypatch.delitem(TOKENS, "apt_trainer")  # revoked
    assert client.get("/").headers["location"] == "/login"


def test_logout_closes_the_session_and_refuses_another_origin(client: TestClient) -> None:
    _session(client, "apt_approver")
    sessions: InMemorySessions = client.app.state.deps.sessions  # type: ignore[attr-defined]
    forged = client.post("/logout", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and len(sessions.rows) == 1
    done = client.post("/logout", headers={"Origin": "http://testserver"})
    assert done.status_code == 303 and sessions.rows == {}


def test_the_cookie_is_secure_when_the_public_url_is_https_even_behind_a_plain_proxy() -> None:
    app = create_app(_deps(public_url="https://approvals.example.com"))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        login = client.post(
            "/login",
            data={"token": "apt_approver"},
            headers={"Origin": "https://approvals.example.com"},
        )
        assert login.status_code == 303, login.text
        attributes = {
            a.strip().split("=")[0] for a in login.headers["set-cookie"].lower().split(";")
        }
        assert {"secure", "httponly", "samesite", "path"} <= attributes
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        assert "path=/" in login.headers["set-cookie"].lower()
        # the form's origin is the public one, not the proxy's plain http host
        refused = client.post(
            "/login", data={"token": "apt_approver"}, headers={"Origin": "http://testserver"}
        )
        assert refused.status_code == 403 and "https://approvals.example.com" in refused.text


def test_the_cookie_is_not_secure_for_a_plain_public_url_or_none() -> None:
    for public_url, origin in (
        ("", "http://testserver"),
        ("http://10.0.0.5:8480", "http://10.0.0.5:8480"),
    ):
        with TestClient(create_app(_deps(public_url)), follow_redirects=False) as client:
            login = client.post(
                "/login", data={"token": "apt_approver"}, headers={"Origin": origin}
            )
            assert login.status_code == 303, (public_url, login.text)
            assert "secure" not in login.headers["set-cookie"].lower(), public_url


LINKS = re.compile(r"""\b(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)


def _pages(client: TestClient) -> dict[str, Any]:
    """Every kind of HTML page this layer serves: the login form (blank and after a bad
    token), the pending list, an error page, a missing page."""
    pages = {"login": client.get("/login")}
    pages["bad token"] = client.post("/login", data={"token": "nope"})
    _session(client, "apt_approver")
    pages["pending"] = client.get("/")
    pages["missing"] = client.get("/no/such/page")
    _session(client, "apt_trainer")
    pages["forbidden"] = client.get("/")
    return pages


def test_no_page_loads_anything_from_another_origin_or_runs_a_script(client: TestClient) -> None:
    for name, response in _pages(client).items():
        assert response.headers["content-type"].startswith("text/html"), name
        assert "<script" not in response.text.lower(), name
        assert "<style" not in response.text.lower() and "style=" not in response.text, name
        links = LINKS.findall(response.text)
        assert "/static/approval.css" in links, name
        for link in links:  # same-origin paths only: no scheme, no //host
            assert link.startswith("/") and not link.startswith("//"), (name, link)


def test_every_page_carries_the_strict_content_security_policy(client: TestClient) -> None:
    for name, response in _pages(client).items():
        policy = dict(
            d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'" and policy["script-src"] == "'none'", name
        assert policy["style-src"] == "'self'" and policy["object-src"] == "'none'", name
        assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'", name
        assert policy["form-action"] == "'self'", name
        assert "unsafe" not in response.headers["content-security-policy"], name
        assert response.headers["cache-control"] == "no-store", name


def test_the_stylesheet_is_served_from_the_page_origin_without_a_session(
    client: TestClient,
) -> None:
    response = client.get("/static/approval.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")
    assert ".chart text" in response.text
    assert client.get("/static/%2e%2e/auth.py").status_code == 404


def test_a_form_post_naming_no_origin_or_the_wrong_one_is_refused_before_anything_else(
    client: TestClient,
) -> None:
    del client.headers["origin"]
    sessions: InMemorySessions = client.app.state.deps.sessions  # type: ignore[attr-defined]
    cases = {
        "neither": {},
        "null": {"Origin": "null"},
        "other host": {"Origin": "http://evil.example"},
        "other port": {"Origin": "http://testserver:8081"},
        "referer elsewhere": {"Referer": "http://evil.example/testserver/login"},
    }
    for name, headers in cases.items():
        response = client.post("/login", data={"token": "apt_approver"}, headers=headers)
        assert response.status_code == 403, name
        assert "text/html" in response.headers["content-type"], name
        assert "set-cookie" not in response.headers and sessions.rows == {}, name
    refused = client.post("/login", data={"token": "apt_approver"})
    assert "must say where it comes from (Origin or Referer)" in refused.text
    # Without Origin, a same-origin Referer is enough (what an older browser sends).
    accepted = client.post(
        "/login", data={"token": "apt_approver"}, headers={"Referer": "http://testserver/login"}
    )
    assert accepted.status_code == 303 and len(sessions.rows) == 1


def test_a_decision_form_from_another_origin_is_refused_and_never_reaches_the_decider(
    client: TestClient,
) -> None:
    # The decider is None here: a request that reached it would fail with 500, not 403.
    _session(client, "apt_approver")
    page = PATH.removeprefix("/api/v1")
    ballot = {"decision": "approve", "manifest_digest": "sha256:" + "b" * 64}
    for action in ("/decision", "/withdraw"):
        response = client.post(
            page + action, data=ballot, headers={"Origin": "http://evil.example"}
        )
        assert response.status_code == 403, (action, response.text)
        assert "a form from http://evil.example may not post here" in response.text


def test_a_browser_call_to_the_api_from_another_origin_is_refused_and_a_cli_one_is_not(
    client: TestClient,
) -> None:
    del client.headers["origin"]
    body = {"decision": "maybe"}  # invalid: a call past the origin check is a 422
    foreign = {**_as(Role.APPROVER), "Origin": "http://evil.example"}
    for method in ("POST", "DELETE"):
        path = PATH + ("/decisions" if method == "POST" else "/decisions/mine")
        response = client.request(method, path, json=body, headers=foreign)
        assert "http://evil.example" in _problem(response, 403, "cross-site-request")["detail"]
    cli = client.post(PATH + "/decisions", json=body, headers=_as(Role.APPROVER))
    _problem(cli, 422, "invalid-request")
    same = client.post(
        PATH + "/decisions", json=body, headers={**_as(Role.APPROVER), **SAME_ORIGIN}
    )
    _problem(same, 422, "invalid-request")


def test_logging_in_again_ends_the_session_the_browser_had(client: TestClient) -> None:
    first = _session(client, "apt_approver")
    second = _session(client, "apt_approver")
    sessions: InMemorySessions = client.app.state.deps.sessions  # type: ignore[attr-defined]
    assert first != second and list(sessions.rows) == [session_hash(second)]


def test_a_public_url_that_names_no_origin_is_refused_at_start() -> None:
    for url in ("approvals.example.com", "ftp://approvals.example.com", "https://"):
        with pytest.raises(SettingsError, match="APPROVAL_PUBLIC_URL"):
            ApprovalSettings.from_env(env={"APPROVAL_PUBLIC_URL": url})
    fine = ApprovalSettings.from_env(env={"APPROVAL_PUBLIC_URL": " https://a.example.com "})
    assert fine.public_url == "https://a.example.com"
