"""The middleware every request passes: the token check, and the safety headers.

A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
runs every request through an extra task and a memory stream and builds a ``Request`` and a
streaming ``Response`` around it, which cost more per request than a query-cache-hit search
(docs/benchmarks.md, "The HTTP server"). Here the headers are added to the
``http.response.start`` message as it passes.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from melodex.serve.errors import STATUS_CODES, error_response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_SAFETY = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
_CSP = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("latin-1"))


def _with_safety_headers(raw: list[tuple[bytes, bytes]], api: bool) -> list[tuple[bytes, bytes]]:
    """``raw`` plus the safety headers it lacks (an answer's own value wins)."""
    present = {name.lower() for name, _ in raw}
    extra = [h for h in (*_SAFETY, *(() if api else (_CSP,))) if h[0] not in present]
    return [*raw, *extra] if extra else raw


class GuardMiddleware:
    """Refuse /api requests without the token (when one is set), give every /api error the
    same JSON shape and every answer the safety headers."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_upload_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api")
        if self.token is not None and api and not self._token_ok(scope):
            response = error_response(
                401,
                "unauthorized",
                "this server needs a token: send 'Authorization: Bearer TOKEN' or ?token=",
                {"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, self._headed(send, api))
            return
        await self.app(scope, receive, self._headed(send, api))

    def _token_ok(self, scope: Scope) -> bool:
        given = QueryParams(scope.get("query_string", b"")).get("token") or ""
        auth = Headers(scope=scope).get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        assert self.token is not None
        return secrets.compare_digest(given.encode(), self.token)

    def _headed(self, send: Send, api: bool) -> Send:
        """``send`` that adds the safety headers and replaces a non-JSON /api error (one
        Starlette answered itself, e.g. the body limit) by the JSON error shape."""
        replaced = False

        async def guarded(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of the answer that was replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = list(message.get("headers", ()))
                if api and status >= 400 and not _is_json(raw):
                    replaced = True
                    await self._send_json_error(send, status)
                    return
                message = {**message, "headers": _with_safety_headers(raw, api)}
            await send(message)

        return guarded

    async def _send_json_error(self, send: Send, status: int) -> None:
        message = f"the upload is larger than {self.max_upload_bytes // 2**20} MB"
        if status != 413:
            message = f"request refused ({status})"
        response = error_response(status, STATUS_CODES.get(status, f"http_{status}"), message)
        raw = _with_safety_headers(list(response.raw_headers), True)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": response.body})


def _is_json(raw: list[tuple[bytes, bytes]]) -> bool:
    for name, value in raw:
        if name.lower() == b"content-type":
            return value.startswith(b"application/json")
    return False
