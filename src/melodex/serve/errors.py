"""Every error the API answers has one shape, ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from melodex.errors import AudioDecodeError, MelodexError, StoreError
from melodex.serve.upload import UploadError

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "busy",
}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(
    app: FastAPI, *, scrub: Callable[[str], str], max_upload_bytes: int
) -> None:
    """Map every exception to the error shape; ``scrub`` removes the library's folder from
    messages (clients see ids, never paths)."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, scrub(exc.message), exc.headers)

    @app.exception_handler(UploadError)
    async def _upload_error(_request: Request, exc: UploadError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = "no such endpoint or track (tracks are named by numeric id)"
        elif exc.status_code == 413:
            message = f"the upload is larger than {max_upload_bytes // 2**20} MB"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_message(exc))

    @app.exception_handler(AudioDecodeError)
    async def _undecodable(_request: Request, exc: AudioDecodeError) -> JSONResponse:
        return error_response(
            422, "undecodable_audio", f"the clip could not be decoded: {exc.reason}"
        )

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return error_response(503, "library_unavailable", scrub(str(exc)))

    @app.exception_handler(MelodexError)
    async def _melodex_error(_request: Request, exc: MelodexError) -> JSONResponse:
        return error_response(400, "bad_request", scrub(str(exc)))

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__})")
