"""The query parameters of the ranking endpoints: metadata filters, exclusion, search mode."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from fastapi import Query

Short = Annotated[str | None, Query(max_length=200)]


class SearchFilters:
    """``bpm`` (60-90) and ``key`` (minor, D, D minor) from the descriptors, ``artist``,
    ``album``, ``genre`` (part of the tag), ``year`` (1990-1999), ``folder`` (part of the folder
    path), ``duration`` (2m-5m), ``exclude`` (repeatable) and ``mode``: what search and
    playlists take alike."""

    def __init__(
        self,
        bpm: Annotated[
            str | None,
            Query(max_length=40, description="Tempo range, e.g. 60-90 (octave errors allowed)."),
        ] = None,
        key: Annotated[
            str | None, Query(max_length=40, description="Key or mode: minor, D, 'D minor'.")
        ] = None,
        artist: Annotated[Short, Query(description="Part of the artist tag.")] = None,
        album: Annotated[Short, Query(description="Part of the album tag.")] = None,
        genre: Annotated[Short, Query(description="Part of the genre tag.")] = None,
        year: Annotated[str | None, Query(max_length=20, description="1995, 1990-1999")] = None,
        folder: Annotated[Short, Query(description="Part of the track's folder path.")] = None,
        duration: Annotated[
            str | None, Query(max_length=40, description="Length range: 2m-5m, 3:00-, -90s.")
        ] = None,
        exclude: Annotated[
            list[str] | None,
            Query(description="Texts to push down (repeatable, at most 10 of 200 characters)."),
        ] = None,
        mode: Annotated[
            Literal["hybrid", "vector", "text"],
            Query(description="hybrid: vectors fused with full text of tags and names."),
        ] = "hybrid",
    ) -> None:
        self.bpm, self.key = bpm, key
        self.metadata = {
            "artist": artist, "album": album, "genre": genre, "year": year, "folder": folder,
            "duration": duration,
        }  # fmt: skip
        self.exclude = [e[:200] for e in exclude or [] if e.strip()][:10]
        self.mode = mode

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``Library.search``."""
        given = {name: value for name, value in self.metadata.items() if value}
        return {**given, **self.ranking()}

    def ranking(self) -> dict[str, Any]:
        """The options besides the metadata filters: tempo, key, exclusion, mode."""
        return {"bpm": self.bpm, "key": self.key, "exclude": self.exclude, "mode": self.mode}


async def search_filters(**given: Any) -> SearchFilters:
    """:class:`SearchFilters` from the query, as a dependency built on the event loop: FastAPI
    runs a class dependency in its thread pool (a hop per request for a few assignments)."""
    return SearchFilters(**given)


search_filters.__signature__ = inspect.signature(SearchFilters, eval_str=True)  # type: ignore[attr-defined]
