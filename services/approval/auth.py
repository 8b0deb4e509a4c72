"""Who is calling, and whether their role may call this: bearer tokens for the API, a
server-side session (opened with such a token) in an HttpOnly cookie for the page, one
policy table for both.

Authentication runs as middleware before anything reads the request, so an anonymous
caller always gets 401, whatever it sent; each operation then names the roles it allows.
Every state-changing request is checked for where it comes from (`refuse_cross_site`,
`refuse_foreign_origin`) before its session or its role.
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
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

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


def _same_origin(request: Request, sent: str) -> bool:
    parts = urlsplit(sent)
    if request.app.state.deps.public_url:
        return f"{parts.scheme}://{parts.netloc}" == public_origin(request)
    # No public URL: the host the browser addressed (a proxy may have changed the scheme).
    return bool(parts.netloc) and parts.netloc == request.headers.get("host")


def _shown(sent: str) -> str:
    parts = urlsplit(sent)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else repr(sent)


async def refuse_cross_site(request: Request) -> None:
    """The pages' router dependency: a state-changing request must come from the page's own
    origin, as its Origin header says (or, without one, its Referer). One naming neither is
    refused as well: every browser sends one of them on a form post (the pages' own
    Referrer-Policy is same-origin), so only a forger or a stripped request omits both."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("origin") or request.headers.get("referer")
    wanted = public_origin(request)
    if not sent:
        raise ApiProblem(
            403,
            "cross-site-request",
            f"a form post must say where it comes from (Origin or Referer); only {wanted} "
            "may post here",
        )
    if not _same_origin(request, sent):
        raise ApiProblem(
            403,
            "cross-site-request",
            f"a form from {_shown(sent)} may not post here; only {wanted} may",
        )


async def refuse_foreign_origin(request: Request) -> None:
    """The API's router dependency: a state-changing call a browser makes from another
    origin is refused. The bearer token is no ambient credential (a browser never adds it
    on its own), so a call without Origin (adapterctl, curl) needs none."""
    sent = request.headers.get("origin")
    if request.method in SAFE_METHODS or sent is None:
        return
    if not _same_origin(request, sent):
        raise ApiProblem(
            403,
            "cross-site-request",
            f"a browser on {_shown(sent)} may not change anything here; only "
            f"{public_origin(request)} may",
        )
