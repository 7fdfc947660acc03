"""Playlists, paths and duplicates over HTTP, for the page: entries carry ids and file names
(never folders), and a playlist or a path downloads as extended M3U of the server's audio URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from melodex.errors import MelodexError, StoreError
from melodex.library.library import MAX_TRACK_ID
from melodex.serve.errors import ApiError
from melodex.serve.search_params import SearchFilters, search_filters
from melodex.serve.service import LibraryService

Length = Annotated[str, Query(max_length=20, description="Total length: 45m, 1h30m, 3600.")]
Id = Annotated[int, Query(ge=0, le=MAX_TRACK_ID)]
Steps = Annotated[int, Query(ge=0, le=50, description="Tracks between the two ends.")]


def entry_json(entry: Any) -> dict[str, Any]:
    out = entry.to_json()
    out["path"] = Path(entry.path).name
    out["id_str"] = str(entry.id)
    return out


def m3u_response(request: Request, entries: list, filename: str) -> Response:
    """Extended M3U of ``entries`` (``#EXTINF:<seconds>,<artist> - <title>``) pointing at this
    server's audio URLs, as a download."""
    base = str(request.base_url).rstrip("/")
    lines = ["#EXTM3U"]
    for e in entries:
        name = " ".join((" - ".join(x for x in (e.artist, e.title) if x) or "track").split())
        lines += [f"#EXTINF:{round(e.duration)},{name}", f"{base}/api/tracks/{e.id}/audio"]
    return Response(
        "\n".join(lines) + "\n",
        media_type="audio/x-mpegurl",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def curate_router(service: LibraryService) -> APIRouter:
    router = APIRouter(tags=["curate"])
    light, heavy = service.light, service.heavy

    def run(fn: Any) -> Any:
        with service.query_lock:
            try:
                return fn(service.queries)
            except MelodexError as exc:
                raise ApiError(422, "invalid_request", service.scrub(str(exc))) from exc

    def playlist_entries(q: str, length: str, spacing: int, filters: SearchFilters) -> list:
        from melodex.library.filters import make_filter, parse_duration
        from melodex.library.playlists import make_playlist

        def build(lib: Any) -> list:
            where = make_filter(**{k: v for k, v in filters.metadata.items() if v})
            try:
                return make_playlist(
                    lib, text=q, length=parse_duration(length), spacing=spacing, where=where,
                    **filters.ranking(),
                )  # fmt: skip
            except StoreError as exc:  # as search: tempo or key without descriptors
                raise ApiError(422, "no_descriptors", service.scrub(str(exc))) from exc

        return run(build)

    @router.get("/api/playlist")
    def playlist(
        q: Annotated[str, Query(min_length=1, max_length=500)],
        length: Length = "45m",
        spacing: Annotated[int, Query(ge=0, le=20)] = 0,
        *,
        filters: Annotated[SearchFilters, Depends(search_filters)],
    ) -> list[dict[str, Any]]:
        """Tracks matching ``q``, best first, until ``length`` is filled."""
        with light():
            return [entry_json(e) for e in playlist_entries(q, length, spacing, filters)]

    @router.get("/api/playlist.m3u", response_class=Response)
    def playlist_m3u(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=500)],
        length: Length = "45m",
        spacing: Annotated[int, Query(ge=0, le=20)] = 0,
        *,
        filters: Annotated[SearchFilters, Depends(search_filters)],
    ) -> Response:
        """The playlist as extended M3U whose entries are this server's audio URLs."""
        with light():
            entries = playlist_entries(q, length, spacing, filters)
        return m3u_response(request, entries, "melodex-playlist.m3u")

    def path_entries(start: int, end: int, steps: int, spacing: int) -> list:
        from melodex.library.playlists import make_path

        for tid in (start, end):
            service.row(tid, ["id"])  # 404 for an unknown id
        return run(lambda lib: make_path(lib, start, end, steps=steps, spacing=spacing))

    @router.get("/api/path")
    def path(
        start: Annotated[Id, Query(alias="from")],
        end: Annotated[Id, Query(alias="to")],
        steps: Steps = 8,
        spacing: Annotated[int, Query(ge=0, le=20)] = 0,
    ) -> list[dict[str, Any]]:
        """A smooth path of tracks from one track to another, no track twice."""
        with light():
            return [entry_json(e) for e in path_entries(start, end, steps, spacing)]

    @router.get("/api/path.m3u", response_class=Response)
    def path_m3u(
        request: Request,
        start: Annotated[Id, Query(alias="from")],
        end: Annotated[Id, Query(alias="to")],
        steps: Steps = 8,
        spacing: Annotated[int, Query(ge=0, le=20)] = 0,
    ) -> Response:
        """The path as extended M3U whose entries are this server's audio URLs, in order."""
        with light():
            entries = path_entries(start, end, steps, spacing)
        return m3u_response(request, entries, "melodex-path.m3u")

    @router.get("/api/duplicates")
    def duplicates() -> list[dict[str, Any]]:
        """Groups of tracks holding one recording, with the evidence of each pair."""
        with heavy():
            groups = run(lambda lib: lib.duplicates())
        out = []
        for g in groups:
            data = g.to_json()
            for t in data["tracks"]:
                t["path"] = Path(t["path"]).name
                t["id_str"] = str(t["id"])
            out.append(data)
        return out

    return router
