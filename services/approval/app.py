"""The FastAPI application: the JSON API, the page, one problem format, one auth policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.approval import api, pages, problems
from services.approval.auth import authenticate_api
from services.approval.deps import WebDeps
from services.approval.limits import BodyLimits
from services.approval.views import Problem

DESCRIPTION = """\
Approvers decide on evidence: the revisions evaluated in an environment and not yet
decided, one revision's evidence compared with its baseline, and the decision itself,
bound to the manifest and report digests it was made on and signed (Ed25519).

Every `/api/v1` operation needs `Authorization: Bearer <token>` (`adapterctl principal
add NAME --role ROLE` makes one) and a role the operation allows. Every error is an
RFC 9457 problem document (`application/problem+json`)."""


# On every response: nothing here runs a script or is framed, and no type is sniffed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """The page's own stricter headers stand; every other response gets these."""
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(deps: WebDeps) -> FastAPI:
    app = FastAPI(
        title="Adapter approval service",
        version="1.0.0",
        description=DESCRIPTION,
        # No interactive docs: Swagger UI would load a third-party script on the approval
        # origin. The API is described by /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.deps = deps
    app.state.lookup = deps.lookup
    app.add_middleware(BodyLimits)  # inside authentication, which is added after it
    app.middleware("http")(authenticate_api)
    app.middleware("http")(security_headers)
    problems.install(app, pages.render_problem)
    pages.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
