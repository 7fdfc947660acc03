"""The HTTP API and the web page: the same :class:`~melodex.library.library.Library`, over HTTP.

The server only reads the library (a folder, or a collection on a Chroma server): it never
indexes, and an ``index`` run may write to the same library while it serves. Every query
re-checks the store version (``Library`` does), so new tracks appear without a restart. Tracks
are named by id only; the audio endpoint streams a file only when the store lists it, so no
request can name a path.

The app is assembled here from its parts: error handlers (:mod:`~melodex.serve.errors`), the
guard middleware (:mod:`~melodex.serve.guard`), the library endpoints
(:mod:`~melodex.serve.routes_library`), uploads (:mod:`~melodex.serve.routes_clips`) and the
page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from melodex._version import __version__
from melodex.serve.errors import STATUS_CODES, install_error_handlers
from melodex.serve.guard import GuardMiddleware
from melodex.serve.models import ErrorResponse
from melodex.serve.routes_clips import clips_router
from melodex.serve.routes_curate import curate_router
from melodex.serve.routes_library import library_router
from melodex.serve.security import HostPolicy, SecurityMiddleware, library_gone_check
from melodex.serve.service import LibraryService, ServeConfig

STATIC = Path(__file__).parent / "static"

__all__ = ["ServeConfig", "create_app"]


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app: ``/api/...`` (JSON, OpenAPI at ``/openapi.json``) and the page at ``/``."""
    config = config or ServeConfig()
    service = LibraryService(config)
    errors = {
        status: {"model": ErrorResponse, "description": code}
        for status, code in STATUS_CODES.items()
        if status in (400, 401, 404, 422, 503)
    }
    app = FastAPI(
        title="melodex",
        version=__version__,
        description="Search a music library by text, find similar tracks, play them, and "
        "describe uploaded clips. With a token, send `Authorization: Bearer TOKEN` "
        "(or `?token=`) on every /api request.",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the spec is at /openapi.json
        redoc_url=None,
        responses=errors,
    )
    app.state.service = service
    app.state.config = config
    install_error_handlers(app, scrub=service.scrub, max_upload_bytes=config.max_upload_bytes)
    app.add_middleware(  # inside the security checks: token, JSON errors, safety headers
        GuardMiddleware, token=config.token, max_upload_bytes=config.max_upload_bytes
    )
    app.add_middleware(  # outermost: Host, Origin, upload size, a removed library
        SecurityMiddleware,
        hosts=HostPolicy(config.bind_host, config.allow_hosts),
        max_upload_bytes=config.max_upload_bytes,
        max_uploads=config.max_heavy,
        library_gone=library_gone_check(service.path if service.queries.store_or_none() else None),
    )
    app.include_router(library_router(service))
    app.include_router(clips_router(service))
    app.include_router(curate_router(service))

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
