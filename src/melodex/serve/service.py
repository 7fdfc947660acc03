"""The library behind the API: read-only, with the locks and gates its requests need."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError
from melodex.library.filters import split_negations
from melodex.library.library import Description, Hit, Library
from melodex.library.store import Store
from melodex.library.text_sets import TextSet, held_text_set, held_text_sets
from melodex.serve.batching import QueryBatcher, batcher_for
from melodex.serve.errors import ApiError
from melodex.serve.models import MapOut
from melodex.serve.queue import Gate


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
    max_queries: int = 32  # search/similar/track requests running at once; more wait:
    query_queue: int = 64  # ... this many wait (up to queue_wait s) before 503 + Retry-After
    queue_wait: float = 10.0
    bind_host: str | None = None  # the address served on: its name passes the Host check
    allow_hosts: tuple[str, ...] = ()  # more Host names to answer ("*": any)
    batch_queries: bool = True  # embed the texts of concurrent searches together


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
        self.light = Gate(
            config.max_queries, "query", queue=config.query_queue, wait_seconds=config.queue_wait
        )
        self.heavy = Gate(config.max_heavy, "heavy")
        self._batcher: QueryBatcher | None = None
        self._batcher_checked = not config.batch_queries
        self._batcher_lock = threading.Lock()

    def _prime(self, text: str, *, negation: bool) -> None:
        """Embed the query text with those of concurrent searches (serve/batching.py), outside
        the query lock, so one search's ranking overlaps the next texts' embedding."""
        if not self._batcher_checked:
            with self._batcher_lock:
                if not self._batcher_checked:
                    try:
                        self._batcher = batcher_for(self.model)
                    except MelodexError:  # the search reports a text encoder that cannot load
                        self._batcher = None
                    self._batcher_checked = True
        if self._batcher is not None:
            rest = split_negations(text)[0] if negation else text  # what Library.search embeds
            if rest.strip():
                self._batcher.prime(rest)

    def scrub(self, message: str) -> str:
        """Error messages without the library's folder (clients see ids, never paths)."""
        return message.replace(str(self.path), "<library>")

    # -- under query_lock ----------------------------------------------------------------
    def _store(self) -> Store | None:
        store = self.queries.store_or_none()
        if store is not None:
            store.refresh()
        return store

    def roots(self) -> list[str]:
        """The folders indexed into the library (empty when the store does not keep them)."""
        store = self.queries.store_or_none()
        roots = getattr(store, "roots", None)
        return roots() if callable(roots) else []

    def count(self) -> tuple[int, int, str | None]:
        """(tracks, store version, index kind or None) as of now."""
        with self.query_lock:
            store = self._store()
            if store is None or len(store) == 0:
                return 0, 0 if store is None else store.version, None
            return len(store), store.version, self.queries.index_kind

    def search(
        self, text: str, k: int, *, bpm: str | None = None, key: str | None = None, **options: Any
    ) -> list[Hit]:
        """``options``: the keyword arguments of Library.search (filters, exclude, mode)."""
        self._prime(text, negation=options.get("negation", True))
        with self.query_lock:
            if not self._has_tracks():
                return []
            return self.queries.search(text, k=k, bpm=bpm, key=key, **options)

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
        """The library's 2-D map, cached per store version."""
        with self.query_lock:
            store = self._store()
            version = 0 if store is None else store.version
            cached = self._map
            if cached is not None and cached.store_version == version:
                return cached
            found = self.queries.track_map()
        points = [{**p, "id_str": str(p["id"])} for p in found.points]
        result = MapOut.model_validate({**found.to_json(), "points": points})
        self._map = result
        return result

    def text_sets(self) -> list[dict[str, Any]]:
        """The text sets this library holds for its model (none for a Chroma collection)."""
        return held_text_sets(self.path, self.model) if isinstance(self.path, Path) else []

    def text_set(self, key: str) -> TextSet:
        """A held text set by its id; 404 for any other id (never a path)."""
        try:
            if not isinstance(self.path, Path):
                raise MelodexError("a Chroma collection holds no text sets")
            return held_text_set(self.path, key, self.model)
        except MelodexError as exc:
            raise ApiError(404, "unknown_text_set", self.scrub(str(exc))) from exc

    def describe(
        self,
        wav: Path,
        k: int,
        *,
        texts: TextSet | None = None,
        kinds: set[str] | None = None,
    ) -> Description:
        """Embed and describe under the describe lock; find similar tracks in the query
        library's index, so the server holds one index (at 1M tracks, ~0.8 GB each).
        ``texts``: a held text set whose nearest texts come back as ``matches``."""
        with self.describe_lock:
            emb = self.describer.embed(wav)
            desc = self.describer.describe(
                wav, k=k, similar=False, embedding=emb, texts=texts, kinds=kinds
            )
        with self.query_lock:
            if self._has_tracks():
                desc.similar = self.queries.nearest(emb.vector, k=k)
        return desc
