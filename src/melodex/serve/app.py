"""The HTTP API and the web page: the same :class:`~melodex.library.library.Library`, over HTTP.

The server only reads the library (a folder, or a collection on a Chroma server): it never
indexes, and an ``index`` run may write to the same library while it serves. Every query
re-checks the store version (``Library`` does), so new tracks appear without a restart. Tracks
are named by id only; the audio endpoint streams a file only when the store lists it, so no
request can name a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse as _StarletteFile

import melodex
from melodex.errors import AudioDecodeError, MelodexError, StoreError
from melodex.library.library import Hit, Library
from melodex.serve.mapping import pca_2d
from melodex.serve.models import (
    DescribeOut,
    ErrorResponse,
    HealthOut,
    HitOut,
    MapOut,
    TrackOut,
)
from melodex.serve.upload import SNIFF_BYTES, UploadError, decode_clip, sniff_audio

STATIC = Path(__file__).parent / "static"
MAX_TRACK_ID = 0x7FFF_FFFF_FFFF_FFFF  # ids are 63-bit (store.track_id)
MAX_K = 100
#: Content types by extension; ``mimetypes`` lacks several audio ones on Debian.
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".wave": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".aifc": "audio/aiff",
    ".m4a": "audio/mp4",
    ".m4b": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".wma": "audio/x-ms-wma",
    ".mka": "audio/x-matroska",
}
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

K = Annotated[int, Query(ge=1, le=MAX_K, description="How many results.")]
TrackId = Annotated[
    int, PathParam(ge=0, le=MAX_TRACK_ID, description="A track id (from search results).")
]


@dataclass
class ServeConfig:
    """What ``melodex serve`` runs with; every limit is here, with its default."""

    db: str | Path | None = None  # a library folder or chroma://HOST:PORT/COLLECTION
    model: Any = None  # a model name or folder, a JointModel, or None (the library's)
    token: str | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    decode_timeout: float = 30.0
    max_clip_seconds: float = 600.0
    max_heavy: int = 2  # describe uploads and map builds running at once; more get 503
    max_queries: int = 32  # search/similar/track requests running at once; more get 503


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class _Gate:
    """A non-blocking semaphore: a request past the limit gets 503 at once instead of queueing."""

    def __init__(self, limit: int, what: str) -> None:
        self._sem = threading.BoundedSemaphore(limit)
        self.limit, self.what = limit, what

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._sem.acquire(blocking=False):
            raise ApiError(
                503,
                "busy",
                f"the server is busy ({self.limit} {self.what} requests running); retry shortly",
                {"Retry-After": "1"},
            )
        try:
            yield
        finally:
            self._sem.release()


class LibraryService:
    """The library behind the API, read-only, with the locks its in-memory index needs.

    Two ``Library`` objects share one model: one answers text/track queries and holds the
    search index, the other embeds and describes uploads, so a slow describe never holds up
    searches.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.queries = Library(config.db, model=config.model)
        self.model = self.queries.model  # loaded now, not on the first request
        self.describer = Library(self.queries.path, model=self.model)
        self.path = self.queries.path
        self.query_lock = threading.Lock()
        self.describe_lock = threading.Lock()
        self._map: MapOut | None = None
        self._map_lock = threading.Lock()

    def scrub(self, message: str) -> str:
        """Error messages without the library's folder (clients see ids, never paths)."""
        return message.replace(str(self.path), "<library>")

    # -- under query_lock ----------------------------------------------------------------
    def _store(self):  # noqa: ANN202 (Store | None)
        store = self.queries.store_or_none()
        if store is not None:
            store.refresh()
        return store

    def count(self) -> tuple[int, int, str | None]:
        """(tracks, store version, index kind or None) as of now."""
        with self.query_lock:
            store = self._store()
            if store is None or len(store) == 0:
                return 0, 0 if store is None else store.version, None
            return len(store), store.version, self.queries.index_kind

    def search(
        self, text: str, k: int, *, bpm: str | None = None, key: str | None = None
    ) -> list[Hit]:
        with self.query_lock:
            if not self._has_tracks():
                return []
            return self.queries.search(text, k=k, bpm=bpm, key=key)

    def _has_tracks(self) -> bool:
        """Whether the library holds tracks; the store is refreshed only when it looks empty
        (``Library`` refreshes it on every query anyway, so this costs nothing per query)."""
        store = self.queries.store_or_none()
        if store is None:
            return False
        if len(store) == 0:
            store.refresh()
        return len(store) > 0

    def row(self, track_id: int, columns: list[str]) -> dict[str, Any]:
        with self.query_lock:
            store = self._store()
            rows = store.rows([track_id], columns=columns) if store is not None else []
        if not rows:
            raise ApiError(404, "not_found", f"no track with id {track_id}")
        return rows[0]

    def similar(self, track_id: int, k: int) -> list[Hit]:
        with self.query_lock:
            if self._has_tracks():
                try:
                    return self.queries.similar(track_id, k=k)
                except MelodexError:
                    pass  # below: a 404 when the id is unknown, else the library's own error
        self.row(track_id, ["id"])
        with self.query_lock:
            return self.queries.similar(track_id, k=k)

    def track_map(self) -> MapOut:
        with self.query_lock:
            store = self._store()
            version = 0 if store is None else store.version
            cached = self._map
            if cached is not None and cached.store_version == version:
                return cached
            if store is None or len(store) == 0:
                ids, vectors, rows = [], None, []
            else:
                ids, vectors = store.vectors()
                rows = store.rows(columns=["id", "title", "artist"])
        if vectors is None:
            result = MapOut(store_version=version, explained_variance=[0.0, 0.0], points=[])
        else:
            coords, explained = pca_2d(vectors)
            meta = {r["id"]: r for r in rows}
            points = []
            for tid, (x, y) in zip(ids.tolist(), coords.tolist(), strict=True):
                r = meta.get(tid, {})
                points.append(
                    {
                        "id": tid,
                        "id_str": str(tid),
                        "x": round(x, 5),
                        "y": round(y, 5),
                        "title": r.get("title"),
                        "artist": r.get("artist"),
                    }
                )
            result = MapOut.model_validate(
                {
                    "store_version": version,
                    "explained_variance": [round(float(v), 5) for v in explained],
                    "points": points,
                }
            )
        self._map = result
        return result

    def describe(self, wav: Path, k: int):  # noqa: ANN201 (Description)
        """Embed and describe under the describe lock; find similar tracks in the query
        library's index, so the server holds one index (at 1M tracks, ~0.8 GB each)."""
        with self.describe_lock:
            emb = self.describer.embed(wav)
            desc = self.describer.describe(wav, k=k, similar=False, embedding=emb)
        with self.query_lock:
            if self._has_tracks():
                desc.similar = self.queries.nearest(emb.vector, k=k)
        return desc


def _hit_json(hit: Hit) -> dict[str, Any]:
    out = hit.to_json()
    out["path"] = Path(hit.path).name
    out["id_str"] = str(hit.id)
    return out


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _check_range(request: Request, size: int) -> None:
    """Answer a malformed or unsatisfiable Range with a JSON error, before streaming starts.

    Starlette's ``FileResponse`` serves ranges (206, multipart for several) but answers bad
    ones in plain text; its parser is reused so both agree on what is valid.
    """
    header = request.headers.get("range")
    if header is None:
        return
    from starlette import responses

    parse = getattr(_StarletteFile, "_parse_range_header", None)
    if parse is None:  # a Starlette without it: let FileResponse answer
        return
    try:
        parse(header, size)
    except responses.RangeNotSatisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"range {header!r} is outside the file ({size} bytes)",
            {"Content-Range": f"bytes */{size}"},
        ) from None
    except responses.MalformedRangeHeader as exc:
        raise ApiError(400, "bad_range", f"malformed Range header {header!r}: {exc}") from None


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app: ``/api/...`` (JSON, OpenAPI at ``/openapi.json``) and the page at ``/``."""
    config = config or ServeConfig()
    service = LibraryService(config)
    light = _Gate(config.max_queries, "query")
    heavy = _Gate(config.max_heavy, "heavy")
    errors = {
        status: {"model": ErrorResponse, "description": code}
        for status, code in STATUS_CODES.items()
        if status in (400, 401, 404, 422, 503)
    }

    app = FastAPI(
        title="melodex",
        version=melodex.__version__,
        description="Search a music library by text, find similar tracks, play them, and "
        "describe uploaded clips. With a token, send `Authorization: Bearer TOKEN` "
        "(or `?token=`) on every /api request.",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the spec is at /openapi.json
        redoc_url=None,
        responses=errors,
    )
    app.state.service = service
    app.state.config = config

    # -- errors: always {"error": {"code", "message"}} --------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, service.scrub(exc.message), exc.headers)

    @app.exception_handler(UploadError)
    async def _upload_error(_request: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = "no such endpoint or track (tracks are named by numeric id)"
        elif exc.status_code == 413:
            message = f"the upload is larger than {config.max_upload_bytes // 2**20} MB"
        return _error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(AudioDecodeError)
    async def _undecodable(_request: Request, exc: AudioDecodeError) -> JSONResponse:
        return _error(422, "undecodable_audio", f"the clip could not be decoded: {exc.reason}")

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return _error(503, "library_unavailable", service.scrub(str(exc)))

    @app.exception_handler(MelodexError)
    async def _melodex_error(_request: Request, exc: MelodexError) -> JSONResponse:
        return _error(400, "bad_request", service.scrub(str(exc)))

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal_error", f"internal error ({type(exc).__name__})")

    # -- token and headers -------------------------------------------------------------------
    @app.middleware("http")
    async def _guard(request: Request, call_next):  # noqa: ANN202
        if config.token and request.url.path.startswith("/api"):
            given = request.query_params.get("token") or ""
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            if not secrets.compare_digest(given.encode(), config.token.encode()):
                return _error(
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
            message = f"the upload is larger than {config.max_upload_bytes // 2**20} MB"
            if status != 413:
                message = f"request refused ({status})"
            response = _error(status, STATUS_CODES.get(status, f"http_{status}"), message)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith("/api"):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
                "object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
            )
        return response

    # -- API ---------------------------------------------------------------------------------
    @app.get("/api/health", response_model=HealthOut, tags=["library"])
    def health() -> dict[str, Any]:
        """Tracks count, model identity and search index kind."""
        with light():
            tracks, version, kind = service.count()
        model = service.model
        return {
            "status": "ok",
            "tracks": tracks,
            "model": {"name": model.config.name, "identity": model.identity, "dim": model.dim},
            "index": kind,
            "store_version": version,
            "version": melodex.__version__,
        }

    @app.get("/api/search", response_model=list[HitOut], tags=["library"])
    def search(
        q: Annotated[str, Query(min_length=1, max_length=500, description="Any text.")],
        k: K = 10,
        bpm: Annotated[
            str | None,
            Query(max_length=40, description="Tempo range, e.g. 60-90 (octave errors allowed)."),
        ] = None,
        key: Annotated[
            str | None, Query(max_length=40, description="Key or mode: minor, D, 'D minor'.")
        ] = None,
    ) -> list[dict[str, Any]]:
        """Tracks that best match a text, best first (an empty library gives []).

        ``bpm`` and ``key`` filter by the descriptors of a library indexed with
        ``--descriptors`` (422 with a clear message otherwise)."""
        if not q.strip():
            raise ApiError(422, "invalid_request", "query.q: the search text is blank")
        with light():
            try:
                hits = service.search(q, k, bpm=bpm, key=key)
            except StoreError as exc:
                raise ApiError(422, "no_descriptors", service.scrub(str(exc))) from exc
            except MelodexError as exc:
                raise ApiError(422, "invalid_filter", service.scrub(str(exc))) from exc
            return [_hit_json(h) for h in hits]

    @app.get("/api/similar/{track_id}", response_model=list[HitOut], tags=["library"])
    def similar(track_id: TrackId, k: K = 10) -> list[dict[str, Any]]:
        """Tracks that sound most like a track of the library (itself left out)."""
        with light():
            return [_hit_json(h) for h in service.similar(track_id, k)]

    @app.get("/api/tracks/{track_id}", response_model=TrackOut, tags=["library"])
    def track(track_id: TrackId) -> dict[str, Any]:
        """A track's public fields (no folders) and the model's tag confidences."""
        cols = ["id", "path", "size", "duration", "title", "artist", "album", "genre"]
        with light():
            row = service.row(track_id, [*cols, "tag_scores"])
        names = service.model.tag_names
        scores = row.get("tag_scores") or []
        tags = sorted(
            ({"text": n, "score": round(float(s), 5)} for n, s in zip(names, scores, strict=False)),
            key=lambda t: -t["score"],
        )
        name = Path(row["path"]).name
        return {
            "id": track_id,
            "id_str": str(track_id),
            "filename": name,
            "format": Path(name).suffix.lower().lstrip("."),
            "size": int(row["size"]),
            **{c: row[c] for c in ("title", "artist", "album", "genre")},
            "duration": float(row["duration"]),
            "tags": tags,
            "audio_url": f"/api/tracks/{track_id}/audio",
        }

    @app.get(
        "/api/tracks/{track_id}/audio",
        response_class=FileResponse,
        tags=["library"],
        responses={
            200: {"content": {"audio/*": {}}, "description": "The whole file."},
            206: {"content": {"audio/*": {}}, "description": "A byte range (Range header)."},
            416: {"model": ErrorResponse, "description": "range_not_satisfiable"},
        },
    )
    def audio(track_id: TrackId, request: Request) -> Response:
        """The indexed file itself, with HTTP Range support (206, Content-Range)."""
        with light():
            row = service.row(track_id, ["id", "path", "size", "mtime_ns"])
        path = Path(row["path"])
        ext = path.suffix.lower()
        try:
            st = os.lstat(path)  # a link where the indexed file was is not followed
        except OSError:
            st = None
        if (
            st is None
            or not stat.S_ISREG(st.st_mode)
            or ext not in AUDIO_TYPES
            or (st.st_size, st.st_mtime_ns) != (row["size"], row["mtime_ns"])
        ):
            raise ApiError(
                404,
                "file_missing",
                f"the file of track {track_id} is gone or changed since it was indexed "
                "(re-index the library)",
            )
        _check_range(request, st.st_size)
        return FileResponse(path, media_type=AUDIO_TYPES[ext], stat_result=st)

    @app.get("/api/map", response_model=MapOut, tags=["library"])
    def track_map() -> MapOut:
        """Every track in 2-D: PCA of the stored vectors, cached per store version."""
        with heavy():
            return service.track_map()

    @app.post(
        "/api/describe",
        response_model=DescribeOut,
        tags=["clips"],
        max_body_size=config.max_upload_bytes + 64 * 1024,  # + multipart headers
        responses={
            408: {"model": ErrorResponse, "description": "decode_timeout"},
            413: {"model": ErrorResponse, "description": "payload_too_large"},
            415: {"model": ErrorResponse, "description": "unsupported_media_type"},
        },
    )
    async def describe(
        file: Annotated[UploadFile, File(description="An audio clip (wav, flac, mp3, ...).")],
        k: K = 10,
    ) -> dict[str, Any]:
        """Tags, nearest texts and nearest library tracks of an uploaded clip.

        The clip is decoded in a child process with a time limit, in a temporary folder that
        is deleted afterwards; nothing is written into the library.
        """
        with heavy(), tempfile.TemporaryDirectory(prefix="melodex-upload-") as tmp:
            head = await file.read(SNIFF_BYTES)
            ext = sniff_audio(head)
            if ext is None:
                raise UploadError(
                    415,
                    "unsupported_media_type",
                    "the upload is not an audio file this server reads (by its first bytes: "
                    "wav, flac, ogg/opus, aiff, mp3, aac, m4a, wma, mka)",
                )
            src = Path(tmp) / f"clip{ext}"
            size = len(head)
            with open(src, "wb") as out:
                out.write(head)
                while chunk := await file.read(1 << 20):
                    size += len(chunk)
                    if size > config.max_upload_bytes:
                        raise UploadError(
                            413,
                            "payload_too_large",
                            f"the upload is larger than {config.max_upload_bytes // 2**20} MB",
                        )
                    out.write(chunk)
            wav = Path(tmp) / "clip.wav"
            await decode_clip(
                src,
                wav,
                sample_rate=service.model.config.sample_rate,
                max_seconds=config.max_clip_seconds,
                timeout=config.decode_timeout,
            )
            desc = await asyncio.to_thread(service.describe, wav, k)
            seconds = _duration(wav)
        out_json = desc.to_json()
        out_json["path"] = Path(file.filename or "clip").name
        out_json["duration"] = seconds
        out_json["similar"] = [_hit_json(h) for h in desc.similar]
        return out_json

    # -- the page ----------------------------------------------------------------------------
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _duration(wav: Path) -> float:
    import soundfile as sf

    return round(float(sf.info(str(wav)).duration), 3)
