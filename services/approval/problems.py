"""One error format for the whole API: RFC 9457 problem details (application/problem+json).

Every refusal is an `ApiProblem`; the handlers installed here turn it, FastAPI's
validation errors, unknown routes and unexpected failures into problem documents for the
API, and hand page requests to the page renderer instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:adapters:problem:"

TITLES: Mapping[str, str] = {
    "unauthenticated": "Authentication required",
    "forbidden-role": "Your role may not do this",
    "separation-of-duties": "Separation of duties",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "not-awaiting-decision": "The revision does not await a decision",
    "already-decided": "Already decided",
    "already-approved": "You already approved",
    "stale-evidence": "The decision names stale evidence",
    "stale-serving-contract": "The environment's serving contract changed since evaluation",
    "no-ballot": "There is no ballot of yours to withdraw",
    "conflict": "The revision changed meanwhile",
    "invalid-request": "The request is invalid",
    "content-too-large": "The body is too large",
    "unsupported-media-type": "The body is not JSON",
    "cross-site-request": "Cross-site request refused",
    "internal-error": "Internal error",
}


# The HTTP errors Starlette and the body limits raise, by status.
SLUGS: Mapping[int, str] = {
    404: "not-found",
    405: "method-not-allowed",
    413: "content-too-large",
    415: "unsupported-media-type",
}


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = [dict(e) for e in errors] if errors is not None else None

    @property
    def title(self) -> str:
        return TITLES.get(self.slug, self.slug.replace("-", " ").capitalize())


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem_response(request: Request, problem: ApiProblem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(body, problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


PageRenderer = Callable[[Request, ApiProblem], Awaitable[Response]]


def install(app: FastAPI, render_page: PageRenderer) -> None:
    """Route every error through `ApiProblem`: problem+json for /api, pages for the rest."""

    async def respond(request: Request, problem: ApiProblem) -> Response:
        if is_api(request):
            return problem_response(request, problem)
        return await render_page(request, problem)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return await respond(request, exc)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors: list[dict[str, Any]] = [
            {
                "location": [str(part) for part in e.get("loc", ())],
                "message": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        fields = ", ".join(".".join(e["location"]) for e in errors) or "the request"
        detail = f"invalid {fields}: " + "; ".join(str(e["message"]) for e in errors)
        return await respond(request, ApiProblem(422, "invalid-request", detail, errors=errors))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # a body FastAPI cannot even parse: a field error too
            error = {"location": ["body"], "message": str(exc.detail), "type": "body_unreadable"}
            detail = f"the body cannot be read: {exc.detail}"
            unreadable = ApiProblem(422, "invalid-request", detail, errors=[error])
            return await respond(request, unreadable)
        slug = SLUGS.get(exc.status_code, "invalid-request")
        detail = str(exc.detail) if exc.status_code != 404 else f"no such page: {request.url.path}"
        problem = ApiProblem(exc.status_code, slug, detail, headers=exc.headers)
        return await respond(request, problem)

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("request_failed", method=request.method, path=request.url.path)
        problem = ApiProblem(500, "internal-error", "the service failed; its log says why")
        return problem_response(request, problem)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problem statuses an operation can answer."""
    descriptions = {
        401: "no bearer token, or one that is unknown or revoked",
        403: "the principal's role may not do this, separation of duties forbids it, or a"
        " browser sent it from another origin",
        404: "no such revision or environment",
        409: "stale evidence, already decided, already approved, or not awaiting a decision",
        413: "the body is larger than the service reads",
        415: "the body is not sent as application/json",
        422: "a path parameter or the body does not fit the schema",
    }
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        s: {"description": descriptions[s], "content": {MEDIA_TYPE: {"schema": ref}}}
        for s in statuses
    }
