"""The middleware every request passes: the token check, and the safety headers."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from starlette.responses import Response

from melodex.serve.errors import STATUS_CODES, error_response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def install_guard(app: FastAPI, *, token: str | None, max_upload_bytes: int) -> None:
    """Refuse /api requests without the token (when one is set), give every answer the same
    JSON error shape and the safety headers."""

    @app.middleware("http")
    async def _guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if token and request.url.path.startswith("/api"):
            given = request.query_params.get("token") or ""
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            if not secrets.compare_digest(given.encode(), token.encode()):
                return error_response(
                    401,
                    "unauthorized",
                    "this server needs a token: send 'Authorization: Bearer TOKEN' or ?token=",
                    {"WWW-Authenticate": "Bearer"},
                )
        response = await call_next(request)
        if (
            response.status_code >= 400
            and request.url.path.startswith("/api")
            and not response.headers.get("content-type", "").startswith("application/json")
        ):  # an error Starlette answered itself (the body limit): same JSON shape as the rest
            status = response.status_code
            message = f"the upload is larger than {max_upload_bytes // 2**20} MB"
            if status != 413:
                message = f"request refused ({status})"
            response = error_response(status, STATUS_CODES.get(status, f"http_{status}"), message)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith("/api"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
