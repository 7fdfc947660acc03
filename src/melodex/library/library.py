"""The Python API of a music library: index a folder, then search, find similar, describe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import AudioDecodeError, MelodexError, ModelLoadError, ParameterError
from melodex.library.backends import LibraryStore, as_location, open_existing, open_store
from melodex.library.cold_search import CurrentSnapshot, refresh_snapshot
from melodex.library.filters import (
    TrackFilter,
    check_text,
    descriptor_filters,
    make_filter,
    split_negations,
)
from melodex.library.hits import Description, Hit
from melodex.library.hybrid import EXCLUDE_WEIGHT, Ranked, check_mode, rank
from melodex.library.indexer import IndexReport, index_folder
from melodex.library.mapping import TrackMap, build_track_map
from melodex.library.search_index import exact_limit, sync_index
from melodex.library.stored_rows import stored_embedding
from melodex.library.text_index import TextIndex
from melodex.library.variety import CANDIDATE_FACTOR, Variety, arrange
from melodex.library.vector_index import VectorIndex
from melodex.models import DEFAULT_MODEL, AudioEmbedding, JointModel, load_model
from melodex.progress import ProgressFn
from melodex.vocabulary import describe_vocabulary

# What a Hit needs of a row (fetching every column, the track vector and tag scores too, took
# about twice as long at 1M tracks: bench/bench_million.py).
HIT_COLUMNS = ("id", "path", "title", "artist", "album", "genre", "duration") + (
    "window_vectors",
    "window_starts",
    "bpm",
    "key",
    "mode",
)


#: Weight of the ``plus`` texts' mean embedding added to the seeds' vector in ``similar``.
PLUS_WEIGHT = 0.5

#: Track ids are 63-bit (store.track_id).
MAX_TRACK_ID = 0x7FFF_FFFF_FFFF_FFFF


def default_library_path() -> Path | str:
    """``$MELODEX_DB`` (a folder or a ``chroma://`` URL) or the user data folder
    (``~/.local/share/melodex/library`` on Linux)."""
    if env := os.environ.get("MELODEX_DB"):
        return as_location(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("melodex")) / "library"


class Library:
    """A library folder and the model that indexes and queries it.

    >>> lib = Library("~/music-index")           # doctest: +SKIP
    >>> lib.index("~/Music")                      # doctest: +SKIP
    >>> lib.search("calm solo piano", k=5)        # doctest: +SKIP
    """

    def __init__(
        self, path: str | Path | None = None, *, model: JointModel | str | Path | None = None
    ):
        # a folder (Path) or a networked store's URL (str), see melodex.library.backends
        self.path = as_location(path) if path is not None else default_library_path()
        self._model_arg = model
        self._model: JointModel | None = (
            model if not isinstance(model, str | Path | type(None)) else None
        )
        self._store: LibraryStore | None = None
        self._index: VectorIndex | None = None
        self._index_version = -1
        self._vocab: tuple[list[str], np.ndarray] | None = None
        self._text: TextIndex | None = None
        self._snapshots = CurrentSnapshot()  # rows of hits, without LanceDB

    # -- parts, loaded lazily ----------------------------------------------------------------
    @property
    def model(self) -> JointModel:
        """The model given, else the one the library was indexed with, else melodex-base."""
        if self._model is None:
            name = self._model_arg
            if name is None:
                self._model = self._recorded_model()
            else:
                self._model = load_model(name)
        return self._model

    def _recorded_model(self) -> JointModel:
        """Load the model the store records (its source: a built-in name, a folder, a spec)."""
        store = self.store_or_none()
        meta = store.meta if store is not None else {}
        if not meta:
            return load_model(DEFAULT_MODEL)
        source = meta.get("model_source") or meta.get("model_name") or DEFAULT_MODEL
        try:
            return load_model(source)
        except ModelLoadError as exc:
            raise ModelLoadError(
                f"{self.path}: indexed with model {meta.get('model')} from {source}, which "
                f"cannot be loaded now ({exc}); pass --model with that model's folder"
            ) from exc

    def store_or_none(self) -> LibraryStore | None:
        if self._store is None:
            self._store = open_existing(self.path)
        return self._store

    @property
    def store(self) -> LibraryStore:
        store = self.store_or_none()
        if store is None:
            raise MelodexError(f"{self.path}: no library here yet (index a folder first)")
        return store

    def __len__(self) -> int:
        store = self.store_or_none()
        return 0 if store is None else len(store)

    # -- writing -----------------------------------------------------------------------------
    def index(
        self,
        folder: str | Path,
        *,
        progress: ProgressFn | None = None,
        ray: str | None = None,
        **options: Any,
    ) -> IndexReport:
        """Add, update and remove tracks so the library mirrors ``folder`` (see indexer rules).

        ``ray``: embed on a Ray cluster instead of in this process ("local" starts one on this
        machine; or a cluster address). Same rules, same rows (melodex.library.distributed).
        """
        if self._store is None:
            self._store = open_store(self.path, create=True)
        if ray is not None:
            from melodex.library.distributed import index_folder_ray

            report = index_folder_ray(
                self._store, self.model, folder, address=ray, progress=progress, **options
            )
        else:
            report = index_folder(self._store, self.model, folder, progress=progress, **options)
        add_root = getattr(self._store, "add_root", None)
        if add_root is not None:  # the server streams files only from inside these
            for root in [folder, *report.followed]:
                add_root(root)
        from melodex.library.cue import index_cue_sheets

        index_cue_sheets(  # albums as one file + a .cue
            self._store, self.model, folder, follow_symlinks=options.get("follow_symlinks", False)
        )
        if not self._native_search():
            # queries never pay for an ANN build, and new processes load a current index
            self._index = sync_index(self._store, current=self._index, save=True)
            self._index_version = self._store.version
            if len(self._store) <= exact_limit(self._store.dim or 1):
                self._text_index()  # the cold path ranks with it, so bring it up to date now
            refresh_snapshot(self)  # a new process's plain text query skips LanceDB and torch
        return report

    # -- reading -----------------------------------------------------------------------------
    def _native_search(self) -> bool:
        """Whether the store searches itself (a server's ANN index) instead of an in-memory
        copy of every vector."""
        return callable(getattr(self.store, "search", None))

    def _vector_index(self) -> VectorIndex:
        store = self.store
        store.refresh()
        store.check_model(self.model.identity)
        if self._index is None or self._index_version != store.version:
            self._index = sync_index(store, current=self._index)
            self._index_version = store.version
        if self._index is None:
            raise MelodexError(f"{self.path}: the library is empty")
        return self._index

    @property
    def index_kind(self) -> str:
        """ "exact" or "hnsw": which search the library size chose ("chroma": the server's)."""
        if self._native_search():
            return "chroma"
        return self._vector_index().kind

    def search(
        self,
        text: str,
        *,
        k: int = 10,
        bpm: str | None = None,
        key: str | None = None,
        mode: str = "hybrid",
        exclude: str | list[str] | tuple[str, ...] = (),
        negation: bool = True,
        exclude_weight: float = EXCLUDE_WEIGHT,
        where: TrackFilter | None = None,
        variety: Variety | None = None,
        **metadata: Any,
    ) -> list[Hit]:
        """Tracks that best match a text, best first.

        ``mode``: "hybrid" (default) fuses the vector ranking with a full-text search of the
        title, artist, album, genre, file name and folder (melodex.library.hybrid); "vector" or
        "text" uses one of them. ``exclude`` texts, and "no X" / "not X" / "without X" in the
        query (unless ``negation=False``), lower each track's score by ``exclude_weight`` times
        its similarity to X. ``bpm`` ("60-90", or one tempo meaning +/- 4 %, octave errors
        allowed) and ``key`` ("minor", "D", "D minor") restrict the results to tracks indexed
        with descriptors; ``artist``, ``album``, ``genre``, ``year`` ("1990-1999"), ``folder``
        and ``duration`` ("2m-5m") to tracks whose metadata match (melodex.library.filters), or
        ``where``, a ready :class:`TrackFilter`. ``variety``: collapse versions of one
        recording, cap hits per artist/album, MMR re-ranking (melodex.library.variety).
        """
        if not isinstance(text, str) or not text.strip():
            raise MelodexError("search text is empty")
        check_text(text)
        check_mode(mode)
        descriptor_filters(bpm=bpm, key=key)  # a bad --bpm/--key fails before the model loads
        flt = where if where is not None else make_filter(**metadata)
        excluded = [exclude] if isinstance(exclude, str) else list(exclude)
        if negation:
            text, negated = split_negations(text)
            excluded += negated
            if not text.strip():
                raise MelodexError("search text is empty once its 'no X' parts are taken out")
        query = self.model.encode_text(text)
        ranked = self._rank(
            query, text=text, k=k * CANDIDATE_FACTOR if variety else k, bpm=bpm, key=key,
            flt=flt, mode=mode, excluded=[e for e in excluded if e.strip()],
            exclude_weight=exclude_weight,
        )  # fmt: skip
        hits = self._hits(ranked, query)
        return arrange(hits, k=k, variety=variety, store=self.store) if variety else hits

    def _rank(
        self,
        query: np.ndarray,
        *,
        text: str,
        k: int,
        bpm: str | None,
        key: str | None,
        flt: TrackFilter,
        mode: str,
        excluded: list[str],
        exclude_weight: float,
        drop: tuple[int, ...] = (),
    ) -> list[Ranked]:
        """Rank candidates for a query vector (and its text): filters, fusion, penalties."""
        if k < 1:
            raise MelodexError(f"k must be at least 1, not {k}")
        filters = descriptor_filters(bpm=bpm, key=key)
        allowed = None
        store = self.store
        if filters is not None and not self._native_search():
            allowed = store.filtered_ids(**filters)
        text_index = self._text_index() if (flt or mode != "vector") else None
        if flt and text_index is not None:
            passing = text_index.filtered_ids(flt)
            allowed = passing if allowed is None else np.intersect1d(allowed, passing)
        if allowed is not None and len(allowed) == 0:
            return []
        text_hits: list[tuple[int, float]] = []
        if text_index is not None and mode != "vector":
            text_hits = text_index.match(text, limit=max(100, k), allowed=allowed)
            if excluded and text_hits:
                named = {i for x in excluded for i, _ in text_index.match(x, limit=len(self))}
                text_hits = [(i, s) for i, s in text_hits if i not in named]
        return rank(
            top=self._top_fn(filters),
            query=np.asarray(query, np.float32),
            text_hits=text_hits,
            k=k,
            mode=mode,
            allowed=allowed,
            exclude_vectors=self.model.encode_text(excluded) if excluded else None,
            exclude_weight=exclude_weight,
            drop=drop,
        )

    def _text_index(self) -> TextIndex:
        """The full-text and metadata index beside the store, brought up to date."""
        store = self.store
        if self._text is None:
            folder = store.path if isinstance(store.path, Path) else None
            self._text = TextIndex(folder)
        self._text.sync(store)
        return self._text

    def _top_fn(self, filters: dict[str, Any] | None):  # noqa: ANN202 (hybrid.TopFn)
        """Top-k by similarity for query vectors, on the in-memory index or the store's own."""
        if not self._native_search():
            index = self._vector_index()
            return lambda q, k, allowed: index.search(q, k=k, allowed=allowed)

        def native(q: np.ndarray, k: int, allowed: np.ndarray | None):  # noqa: ANN202
            out_s, out_i = [], []
            for vec in q:
                if allowed is not None and len(allowed) <= 4 * k:
                    rows = self.store.rows(allowed.tolist(), columns=["id", "vector"])
                    ids = np.asarray([r["id"] for r in rows], np.int64)
                    scores = np.asarray([r["vector"] for r in rows], np.float32) @ vec
                else:  # the server's index, filtered here
                    scores, ids = self._store_search(vec, k=4 * k, filters=filters)
                    if allowed is not None:
                        keep = np.isin(ids, allowed)
                        scores, ids = scores[keep], ids[keep]
                order = np.argsort(-scores, kind="stable")[:k]
                out_s.append(scores[order])
                out_i.append(ids[order])
            n = min(len(s) for s in out_s)
            return np.stack([s[:n] for s in out_s]), np.stack([i[:n] for i in out_i])

        return native

    def similar(
        self,
        path_or_id: str | Path | int | list[str | Path | int] | tuple[str | Path | int, ...],
        *,
        k: int = 10,
        plus: list[str] | tuple[str, ...] = (),
        minus: list[str] | tuple[str, ...] = (),
        where: TrackFilter | None = None,
        variety: Variety | None = None,
    ) -> list[Hit]:
        """Tracks closest to a track or to several (indexed or not); the seeds are left out.

        Several seeds are averaged; ``plus`` texts pull the query towards them (their mean
        embedding added with weight ``PLUS_WEIGHT``), ``minus`` texts push tracks like them down
        (the exclusion penalty of search); ``variety``: collapse, caps, MMR (library/variety.py).
        """
        seeds = list(path_or_id) if isinstance(path_or_id, list | tuple) else [path_or_id]
        if not seeds:
            raise ParameterError("similar needs at least one track")
        if not plus and not minus and where is None and not variety and len(seeds) == 1:
            vector, own_id = self._track_vector(seeds[0])
            return self._search_vector(vector, k=k + 1, exclude=own_id)[:k]
        from melodex.library.playlists import seed_vector

        query, own = seed_vector(self, seeds)
        if plus:
            query = query + PLUS_WEIGHT * self.model.encode_text(list(plus)).mean(axis=0)
            query = (query / max(float(np.linalg.norm(query)), 1e-12)).astype(np.float32)
        want = k * CANDIDATE_FACTOR if variety else k
        ranked = self._rank(
            query, text="", k=want, bpm=None, key=None, flt=where or TrackFilter(),
            mode="vector", excluded=list(minus), exclude_weight=EXCLUDE_WEIGHT, drop=tuple(own),
        )  # fmt: skip
        return arrange(
            self._hits(ranked, query), k=k, variety=variety or Variety(), store=self.store
        )

    def describe(
        self,
        path: str | Path,
        *,
        k: int = 10,
        similar: bool = True,
        embedding: AudioEmbedding | None = None,
        texts: str | Path | Any = None,
        kinds: set[str] | None = None,
    ) -> Description:
        """What a track sounds like: its tags, the nearest built-in texts, similar tracks.

        ``similar=False`` leaves the similar tracks out (no search index is needed);
        ``embedding`` reuses one already made by :meth:`embed`; ``texts``: a manifest or .txt
        file (or a loaded ``TextSet``) whose texts are ranked too (``matches``, each with its
        item and kind; only the ``kinds`` given), embedded once and kept beside the library
        (library/text_sets.py).
        """
        emb = embedding if embedding is not None else self._embedding(path)
        vocab, matrix = self._describe_vocabulary()
        scores = matrix @ emb.vector
        order = np.argsort(-scores, kind="stable")[:k]
        names = self.model.tag_names
        tag_order = np.argsort(-emb.tag_scores, kind="stable")[:k]
        hits: list[Hit] = []
        if similar and len(self) > 0:
            own = self.store.find_path(str(Path(os.path.expanduser(path)).resolve()))
            hits = self.nearest(emb.vector, k=k, exclude=own["id"] if own else None)
        matches = None
        if texts is not None:
            from melodex.library.text_sets import TextSet, load_text_set

            store = self.store_or_none()
            folder = self.path if isinstance(self.path, Path) and store is not None else None
            text_set = (
                texts if isinstance(texts, TextSet) else
                load_text_set(texts, model=self.model, folder=folder)
            )  # fmt: skip
            matches = text_set.rank(emb.vector, k=k, kinds=kinds)
        return Description(
            path=str(path),
            tags=[(names[i], float(emb.tag_scores[i])) for i in tag_order],
            texts=[(vocab[i], float(scores[i])) for i in order],
            similar=hits,
            matches=matches,
        )

    def duplicates(self, **options: Any) -> list[Any]:
        """Groups of tracks holding one recording, with evidence (melodex.library.duplicates;
        ``options``: its thresholds)."""
        from melodex.library.duplicates import find_duplicates, library_tracks

        store = self.store
        store.refresh()
        return find_duplicates(library_tracks(store), **options)

    def highlight(self, path_or_id: str | Path | int, query: str | None = None) -> Any:
        """A track's indexed windows scored against ``query`` (or the track itself), best first;
        its ``start`` is the preview offset (melodex.library.highlights)."""
        from melodex.library.highlights import highlight, window_seconds

        if isinstance(path_or_id, int):
            rows = self.store.rows([path_or_id], columns=["id", "path"])
            if not rows:
                raise MelodexError(f"no track with id {path_or_id} in {self.path}")
            path_or_id = rows[0]["path"]
        emb = self._embedding(path_or_id)
        return highlight(
            path=str(path_or_id), vector=emb.vector, window_vectors=emb.window_vectors,
            window_starts=emb.window_starts, duration=emb.duration,
            query=None if query is None else self.model.encode_text(query), query_text=query,
            length=window_seconds(self.model, emb.window_starts),
        )  # fmt: skip

    def embed(self, path: str | Path) -> AudioEmbedding:
        """A file's embedding: the stored one when the file is indexed and unchanged."""
        return self._embedding(path)

    def nearest(
        self,
        vector: np.ndarray,
        *,
        k: int = 10,
        exclude: int | list[int] | tuple[int, ...] | set[int] | None = None,
        where: TrackFilter | None = None,
    ) -> list[Hit]:
        """Tracks nearest to an audio embedding vector (e.g. :meth:`embed` of any file).

        ``exclude``: a track id or several, never returned; ``where``: a metadata filter."""
        if exclude is None or isinstance(exclude, int):
            if where is None:
                return self._search_vector(
                    np.asarray(vector, np.float32), k=k + 1, exclude=exclude
                )[:k]
            exclude = () if exclude is None else (exclude,)
        query = np.asarray(vector, np.float32)
        ranked = self._rank(
            query, text="", k=k, bpm=None, key=None, flt=where or TrackFilter(), mode="vector",
            excluded=[], exclude_weight=0.0, drop=tuple(exclude),
        )  # fmt: skip
        return self._hits(ranked, query)

    def tag(self, path: str | Path, *, k: int = 10) -> list[tuple[str, float]]:
        """The model's zero-shot tags for a file, with confidences."""
        emb = self._embedding(path)
        order = np.argsort(-emb.tag_scores, kind="stable")[:k]
        return [(self.model.tag_names[i], float(emb.tag_scores[i])) for i in order]

    def resolve_track(self, text: str) -> int | str:
        """A track named on a command line: a numeric id, unless a file of that name exists."""
        if text.isascii() and text.isdigit() and not Path(text).exists():
            value = int(text)
            if value > MAX_TRACK_ID:
                raise ParameterError(f"track id {text} is too large (ids are 63-bit)")
            return value
        return text

    def track_map(self) -> TrackMap:
        """Every track in 2-D: PCA of the stored vectors (an empty library gives no points)."""
        store = self.store_or_none()
        if store is not None:
            store.refresh()
        return build_track_map(store)

    # -- helpers -------------------------------------------------------------------------------
    def _search_vector(
        self,
        query: np.ndarray,
        *,
        k: int,
        exclude: int | None = None,
        allowed: np.ndarray | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[Hit]:
        if k < 1:
            raise MelodexError(f"k must be at least 1, not {k}")
        if self._native_search():
            scores, ids = self._store_search(query, k=k, filters=filters)
        else:
            index = self._vector_index()
            if allowed is not None and len(allowed) == 0:
                return []
            found = index.search(np.asarray(query, np.float32), k=k, allowed=allowed)
            scores, ids = found[0][0], found[1][0]
        pairs = [
            Ranked(int(i), float(s), vector_score=float(s))
            for i, s in zip(ids, scores, strict=True)
            if int(i) != exclude
        ]
        return self._hits(pairs, query)

    def _hits(self, ranked: list[Ranked], query: np.ndarray) -> list[Hit]:
        """Hits with their rows, each with the window that best matches ``query``."""
        snap = self._snapshots.get(self) if ranked else None
        if snap is not None:
            try:
                return snap.hits(
                    [(r.id, r.score, r.vector_score, r.text_score) for r in ranked], query
                )
            except IndexError:  # an id the snapshot lacks: read the store
                pass
        rows = {r["id"]: r for r in self.store.rows([r.id for r in ranked], columns=HIT_COLUMNS)}
        hits = []
        for position, item in enumerate(ranked, start=1):
            row = rows.get(item.id)
            if row is None:  # removed since the index was built
                continue
            windows = np.asarray(row["window_vectors"], np.float32).reshape(-1, len(query))
            start = None
            if len(windows):
                start = float(row["window_starts"][int(np.argmax(windows @ query))])
            hits.append(
                Hit(
                    rank=position,
                    score=item.score,
                    id=item.id,
                    path=row["path"],
                    title=row["title"],
                    artist=row["artist"],
                    album=row["album"],
                    genre=row["genre"],
                    duration=float(row["duration"]),
                    segment_start=start,
                    bpm=None if row.get("bpm") is None else round(float(row["bpm"]), 1),
                    key=row.get("key"),
                    mode=row.get("mode"),
                    vector_score=item.vector_score,
                    text_score=item.text_score,
                )
            )
        return hits

    def _store_search(
        self, query: np.ndarray, *, k: int, filters: dict[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search on the store's own index (a networked store): no vectors are copied here."""
        store = self.store
        if not store.meta:
            store.refresh()  # bound by an indexer since this store was opened?
        store.check_model(self.model.identity)
        scores, ids = store.search(np.asarray(query, np.float32), k, **(filters or {}))
        if len(ids) == 0 and len(store) == 0:
            raise MelodexError(f"{self.path}: the library is empty")
        return scores, ids

    def _track_vector(self, path_or_id: str | Path | int) -> tuple[np.ndarray, int | None]:
        if isinstance(path_or_id, int):
            snap = self._snapshots.get(self)  # the stored vector, without a LanceDB read
            vec = snap.vector(path_or_id) if snap is not None else None
            if vec is not None:
                return vec, path_or_id
            rows = self.store.rows([path_or_id], columns=["id", "vector"])
            if not rows:
                raise MelodexError(f"no track with id {path_or_id} in {self.path}")
            return np.asarray(rows[0]["vector"], np.float32), path_or_id
        resolved = str(Path(os.path.expanduser(path_or_id)).resolve())
        row = self.store.find_path(resolved) if len(self) else None
        if row is not None:
            return np.asarray(row["vector"], np.float32), int(row["id"])
        return self.model.embed_file(resolved).vector, None

    def _embedding(self, path: str | Path) -> AudioEmbedding:
        resolved = Path(os.path.expanduser(path)).resolve()
        row = self.store.find_path(str(resolved)) if len(self) else None
        stored = stored_embedding(row, resolved)
        if stored is not None:
            return stored
        if not resolved.exists():  # before the model loads (seconds) only to fail on the file
            raise AudioDecodeError(path, "file not found")
        return self.model.embed_file(resolved)

    def _describe_vocabulary(self) -> tuple[list[str], np.ndarray]:
        if self._vocab is None:
            texts = describe_vocabulary()
            self._vocab = (texts, self.model.encode_text(texts))
        return self._vocab
