"""The approvers' web page: server-rendered HTML, no JavaScript. The login form takes a
bearer token and opens a server-side session, whose random id (never the token) goes in
an HttpOnly, SameSite=Strict cookie that expires with it (Secure when APPROVAL_PUBLIC_URL
is https); the pending list; one revision's evidence beside its baseline; approve, deny
and withdraw as plain HTML forms, each refused unless posted from the page's own origin.
The stylesheet is a file served here: the pages load nothing from anywhere else and allow
no inline script or style."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from services.approval.api import evidence_of, pending_list, record_decision, withdraw_decision
from services.approval.auth import COOKIE, LoginRequired, page_role, refuse_cross_site
from services.approval.chart import bar_chart
from services.approval.deps import WebDeps, web_deps
from services.approval.problems import ApiProblem
from services.approval.views import ADAPTER, DIGEST, ENVIRONMENT, DecisionRequest
from shared.lifecycle import State
from shared.registry.principals import Principal, Role, hash_token

# Every state-changing page request is checked for its origin before anything else.
router = APIRouter(include_in_schema=False, dependencies=[Depends(refuse_cross_site)])
templates = Jinja2Templates(directory=FilePath(__file__).parent / "templates")
STATIC = FilePath(__file__).parent / "static"
# What the pages need and no more: their own stylesheet (the chart is inline SVG drawn
# with presentation attributes, not style ones), the favicon, forms posting to themselves.
CSP = (
    "default-src 'none'; script-src 'none'; object-src 'none'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say Origin: null
    "Cache-Control": "no-store",
}

Deps = Annotated[WebDeps, Depends(web_deps)]
EnvironmentName = Annotated[str, Path(pattern=ENVIRONMENT)]
AdapterName = Annotated[str, Path(pattern=ADAPTER)]
RevisionId = Annotated[str, Path(pattern=DIGEST)]


def short(value: str | None, width: int = 19) -> str:
    if not value:
        return "-"
    return value if len(value) <= width else value[:width] + "…"


def number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def unbroken(value: str) -> bool:
    """An item to keep on one line (no space in it): the page wraps only between items."""
    return not any(c.isspace() for c in value)


templates.env.filters["short"] = short
templates.env.filters["number"] = number
templates.env.filters["when"] = when
templates.env.tests["unbroken"] = unbroken


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(HEADERS)
    return response


async def render_problem(request: Request, problem: ApiProblem) -> Response:
    if problem.status == 401:
        return RedirectResponse("/login", 303)
    return page(request, "error.html", problem.status, problem=problem, principal=None)


def install(app: FastAPI) -> None:
    async def on_login_required(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/login", 303)

    app.add_exception_handler(LoginRequired, on_login_required)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


@router.get("/login")
async def login_form(request: Request) -> Response:
    return page(request, "login.html", principal=None, error=None)


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form(max_length=512)]) -> Response:
    deps: WebDeps = request.app.state.deps
    principal = await deps.lookup(token.strip())
    if principal is None:
        error = "That token is unknown or revoked."
        return page(request, "login.html", 401, principal=None, error=error)
    previous = request.cookies.get(COOKIE, "")
    if previous:  # a new id on every login: a session id planted before it is worth nothing
        await deps.sessions.close(previous)
    expires = datetime.now(UTC) + timedelta(seconds=deps.session_ttl_s)
    session_id = await deps.sessions.open(hash_token(token.strip()), expires)
    response = RedirectResponse("/", 303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=deps.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/",
    )
    return response


def secure_cookies(request: Request) -> bool:
    """Secure when the page's public URL is https (a TLS proxy in front), or the request is."""
    public: str = request.app.state.deps.public_url
    return urlsplit(public).scheme == "https" or request.url.scheme == "https"


@router.post("/logout")
async def logout(request: Request) -> Response:
    deps: WebDeps = request.app.state.deps
    session_id = request.cookies.get(COOKIE, "")
    if session_id:
        await deps.sessions.close(session_id)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(
        COOKIE, path="/", secure=secure_cookies(request), httponly=True, samesite="strict"
    )
    return response


@router.get("/")
async def pending_page(
    request: Request, deps: Deps, principal: Annotated[Principal, Depends(page_role("pending"))]
) -> Response:
    environments = [e.name for e in await deps.catalogue.environments()]
    lists = [await pending_list(deps, name) for name in environments]
    return page(request, "pending.html", principal=principal, lists=lists)


@router.get("/environments/{environment}/revisions/{adapter}/{revision}")
async def revision_page(
    request: Request,
    environment: EnvironmentName,
    adapter: AdapterName,
    revision: RevisionId,
    deps: Deps,
    principal: Annotated[Principal, Depends(page_role("evidence"))],
    outcome: str | None = None,
) -> Response:
    evidence = await evidence_of(deps, environment, adapter, revision)
    mine = [b for b in evidence.ballots if b.principal == principal.name]
    return page(
        request,
        "revision.html",
        principal=principal,
        evidence=evidence,
        chart=Markup(bar_chart(evidence.metrics)),
        may_decide=principal.role is Role.APPROVER and evidence.state == State.EVALUATED,
        my_ballot=mine[0] if mine else None,
        outcome=outcome if outcome in ("recorded", "approved", "denied", "withdrawn") else None,
    )


@router.post("/environments/{environment}/revisions/{adapter}/{revision}/decision")
async def decide_page(
    environment: EnvironmentName,
    adapter: AdapterName,
    revision: RevisionId,
    form: Annotated[DecisionRequest, Form()],
    deps: Deps,
    principal: Annotated[Principal, Depends(page_role("decide"))],
) -> Response:
    outcome = await record_decision(deps, principal, environment, adapter, revision, form)
    target = f"/environments/{environment}/revisions/{adapter}/{revision}"
    return RedirectResponse(f"{target}?outcome={outcome.outcome}", 303)


@router.post("/environments/{environment}/revisions/{adapter}/{revision}/withdraw")
async def withdraw_page(
    environment: EnvironmentName,
    adapter: AdapterName,
    revision: RevisionId,
    deps: Deps,
    principal: Annotated[Principal, Depends(page_role("decide"))],
) -> Response:
    await withdraw_decision(deps, principal, environment, adapter, revision)
    target = f"/environments/{environment}/revisions/{adapter}/{revision}"
    return RedirectResponse(f"{target}?outcome=withdrawn", 303)
