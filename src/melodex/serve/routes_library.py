"""The library's read endpoints: health, search, similar, tracks, audio and the map."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse as _StarletteFile

from melodex._version import __version__
from melodex.errors import MelodexError, StoreError
from melodex.library.library import MAX_TRACK_ID, Hit
from melodex.serve.errors import ApiError
from melodex.serve.models import ErrorResponse, HealthOut, HitOut, MapOut, TrackOut
from melodex.serve.search_params import SearchFilters, search_filters
from melodex.serve.security import under_roots
from melodex.serve.service import LibraryService

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

K = Annotated[int, Query(ge=1, le=MAX_K, description="How many results.")]
TrackId = Annotated[
    int, PathParam(ge=0, le=MAX_TRACK_ID, description="A track id (from search results).")
]


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as the API shows it: the file name only, and the id as a string too."""
    out = hit.to_json()
    out["path"] = Path(hit.path).name
    out["id_str"] = str(hit.id)
    return out


def check_range(request: Request, size: int) -> None:
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


def library_router(service: LibraryService) -> APIRouter:
    """The read-only library endpoints, answered under the service's query gate."""
    router = APIRouter(tags=["library"])
    light, heavy = service.light, service.heavy

    # health, search and similar are ``async`` and hand their work to the thread pool
    # themselves: a plain ``def`` route costs two thread-pool hops (the route, then FastAPI's
    # response validation), this one hop; validating <= MAX_K hits on the loop is ~0.1 ms.
    # The gate and the work (it may wait, encode, read the store) never run on the loop.

    def count() -> tuple[int, int, str]:
        with light():
            return service.count()

    @router.get("/api/health", response_model=HealthOut)
    async def health() -> dict[str, Any]:
        """Tracks count, model identity and search index kind."""
        tracks, version, kind = await run_in_threadpool(count)
        model = service.model
        return {
            "status": "ok",
            "tracks": tracks,
            "model": {"name": model.config.name, "identity": model.identity, "dim": model.dim},
            "index": kind,
            "store_version": version,
            "version": __version__,
        }

    def ranked(q: str, k: int, options: dict[str, Any]) -> list[dict[str, Any]]:
        with light():
            try:
                hits = service.search(q, k, **options)
            except StoreError as exc:
                raise ApiError(422, "no_descriptors", service.scrub(str(exc))) from exc
            except MelodexError as exc:
                raise ApiError(422, "invalid_filter", service.scrub(str(exc))) from exc
            return [hit_json(h) for h in hits]

    def alike(track_id: int, k: int) -> list[dict[str, Any]]:
        with light():
            return [hit_json(h) for h in service.similar(track_id, k)]

    @router.get("/api/search", response_model=list[HitOut])
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=500, description="Any text.")],
        k: K = 10,
        *,
        filters: Annotated[SearchFilters, Depends(search_filters)],
    ) -> list[dict[str, Any]]:
        """Tracks that best match a text, best first (an empty library gives []).

        ``bpm`` and ``key`` filter by the descriptors of a library indexed with
        ``--descriptors`` (422 with a clear message otherwise); the other filters by tags,
        folder and length; ``exclude`` and "no X" in ``q`` push tracks like X down."""
        if not q.strip():
            raise ApiError(422, "invalid_request", "query.q: the search text is blank")
        return await run_in_threadpool(ranked, q, k, filters.options())

    @router.get("/api/similar/{track_id}", response_model=list[HitOut])
    async def similar(track_id: TrackId, k: K = 10) -> list[dict[str, Any]]:
        """Tracks that sound most like a track of the library (itself left out)."""
        return await run_in_threadpool(alike, track_id, k)

    @router.get("/api/tracks/{track_id}", response_model=TrackOut)
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

    @router.head("/api/tracks/{track_id}/audio", include_in_schema=False)
    @router.get(
        "/api/tracks/{track_id}/audio",
        response_class=FileResponse,
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
            or not under_roots(path, service.roots())
        ):
            raise ApiError(
                404,
                "file_missing",
                f"the file of track {track_id} is gone or changed since it was indexed "
                "(re-index the library)",
            )
        check_range(request, st.st_size)
        return FileResponse(path, media_type=AUDIO_TYPES[ext], stat_result=st)

    @router.get("/api/map", response_model=MapOut)
    def track_map() -> MapOut:
        """Every track in 2-D: PCA of the stored vectors, cached per store version."""
        with heavy():
            return service.track_map()

    return router
