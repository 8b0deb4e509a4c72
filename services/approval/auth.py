"""Who is calling, and whether their role may call this: bearer tokens for the API, a
server-side session (opened with such a token) in an HttpOnly cookie for the page, one
policy table for both.

Authentication runs as middleware before anything reads the request, so an anonymous
caller always gets 401, whatever it sent; each operation then names the roles it allows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.approval.problems import ApiProblem, problem_response
from shared.registry.principals import Lookup, Principal, Role

COOKIE = "approval_session"

EVERYONE: frozenset[Role] = frozenset(Role)
READERS: frozenset[Role] = frozenset({Role.APPROVER, Role.OPERATOR, Role.AUDITOR, Role.ADMIN})
DECIDERS: frozenset[Role] = frozenset({Role.APPROVER})

# The operations and who may call them: the role matrix the tests hold the service to.
POLICY: Mapping[str, frozenset[Role]] = {
    "me": EVERYONE,
    "signing_key": EVERYONE,
    "pending": READERS,
    "evidence": READERS,
    "decide": DECIDERS,
}

bearer = HTTPBearer(
    auto_error=False,
    description="a token from `adapterctl principal add NAME --role ROLE`",
)


def _unauthenticated(detail: str, error: str = "") -> ApiProblem:
    challenge = 'Bearer realm="approval"' + (f', error="{error}"' if error else "")
    return ApiProblem(401, "unauthenticated", detail, headers={"WWW-Authenticate": challenge})


async def authenticate_api(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: every /api/ request carries a valid bearer token, or gets 401 at once."""
    if not request.url.path.startswith("/api/"):
        return await call_next(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        problem = _unauthenticated("send `Authorization: Bearer <token>`")
        return problem_response(request, problem)
    lookup: Lookup = request.app.state.lookup
    principal = await lookup(token.strip())
    if principal is None:
        problem = _unauthenticated("the token is unknown or revoked", "invalid_token")
        return problem_response(request, problem)
    request.state.principal = principal
    return await call_next(request)


def _allow(principal: Principal, operation: str) -> Principal:
    allowed = POLICY[operation]
    if principal.role not in allowed:
        roles = ", ".join(sorted(allowed))
        raise ApiProblem(
            403,
            "forbidden-role",
            f"{principal.name} acts as {principal.role}; this needs one of: {roles}",
        )
    return principal


def api_role(operation: str) -> Callable[..., Principal]:
    """The dependency for an API operation: the caller, if their role allows `operation`."""

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> Principal:
        principal: Principal = request.state.principal  # set by authenticate_api
        return _allow(principal, operation)

    return dependency


class LoginRequired(Exception):
    """A page asked for without a valid session cookie: the page answer is the login form."""


def page_role(operation: str) -> Callable[..., Awaitable[Principal]]:
    """The dependency for a page: the principal of the session cookie, if allowed."""

    async def dependency(request: Request) -> Principal:
        principal = await session_principal(request)
        if principal is None:
            raise LoginRequired
        if request.method not in ("GET", "HEAD"):
            refuse_cross_site(request)
        return _allow(principal, operation)

    return dependency


async def session_principal(request: Request) -> Principal | None:
    """The active principal whose token opened the request's unexpired session, or None."""
    session_id = request.cookies.get(COOKIE, "")
    if not session_id:
        return None
    deps = request.app.state.deps
    token_hash = await deps.sessions.token_hash(session_id, datetime.now(UTC))
    if token_hash is None:
        return None
    principal: Principal | None = await deps.lookup_hash(token_hash)
    return principal  # None once the principal is revoked: the session ends with it


def public_origin(request: Request) -> str:
    """The origin forms must come from: APPROVAL_PUBLIC_URL's, else the request's host."""
    configured = request.app.state.deps.public_url
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def refuse_cross_site(request: Request) -> None:
    """A state-changing form must come from the page's own origin (Origin, else Referer);
    the cookie is SameSite=Strict besides."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        return  # no browser omits both on a form post; the SameSite cookie covers the rest
    parts = urlsplit(sent)
    origin, wanted = f"{parts.scheme}://{parts.netloc}", public_origin(request)
    same = (
        origin == wanted
        if request.app.state.deps.public_url
        else parts.netloc == request.headers.get("host")
    )
    if not same:
        raise ApiProblem(403, "cross-site-request", f"a form from {origin} may not post here")
