"""What the service accepts as a request body: at most MAX_BODY_BYTES, and on the API
only JSON. Both are checked as the body is read, never before: authentication (the outer
middleware) answers an anonymous caller first, and a route that reads no body refuses none.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A decision is four short fields and a comment of at most 2000 characters.
MAX_BODY_BYTES = 64 * 1024


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class BodyLimits:
    """ASGI middleware: a body too large is 413, a non-JSON body on /api/ is 415."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        content_type = headers.get("content-type", "")
        api = str(scope["path"]).startswith("/api/")
        read = 0

        async def checked() -> Message:
            nonlocal read
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large()
            message = await receive()
            body = message.get("body", b"")
            read += len(body)
            if read > self.max_bytes:
                raise self._too_large()
            if api and body and not is_json(content_type):
                given = repr(content_type) if content_type else "no Content-Type"
                raise HTTPException(415, f"send the body as application/json (got {given})")
            return message

        await self.app(scope, checked, send)

    def _too_large(self) -> HTTPException:
        detail = f"send at most {self.max_bytes} bytes: a decision is four fields and a comment"
        return HTTPException(413, detail)
