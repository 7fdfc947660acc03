"""The Python API of a music library: index a folder, then search, find similar, describe."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError, ModelLoadError, ParameterError
from melodex.library.backends import LibraryStore, as_location, open_existing, open_store
from melodex.library.cold_search import refresh_snapshot
from melodex.library.hits import Hit
from melodex.library.indexer import IndexReport, index_folder
from melodex.library.mapping import pca_2d
from melodex.library.search_index import sync_index
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


#: Track ids are 63-bit (store.track_id).
MAX_TRACK_ID = 0x7FFF_FFFF_FFFF_FFFF


def default_library_path() -> Path | str:
    """``$MELODEX_DB`` (a folder or a ``chroma://`` URL) or the user data folder
    (``~/.local/share/melodex/library`` on Linux)."""
    if env := os.environ.get("MELODEX_DB"):
        return as_location(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("melodex")) / "library"


@dataclass
class TrackMap:
    """Every track placed in 2-D (PCA of the stored vectors), as of one store version."""

    store_version: int
    explained_variance: list[float]
    points: list[dict[str, Any]]  # id, x, y in [0, 1], title, artist

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Description:
    """What a track sounds like: the taggers' tags, nearest texts and nearest library tracks."""

    path: str
    tags: list[tuple[str, float]]
    texts: list[tuple[str, float]]
    similar: list[Hit]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "tags": [{"text": t, "score": s} for t, s in self.tags],
            "texts": [{"text": t, "score": s} for t, s in self.texts],
            "similar": [h.to_json() for h in self.similar],
        }


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
        if not self._native_search():
            # queries never pay for an ANN build, and new processes load a current index
            self._index = sync_index(self._store, current=self._index, save=True)
            self._index_version = self._store.version
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
        self, text: str, *, k: int = 10, bpm: str | None = None, key: str | None = None
    ) -> list[Hit]:
        """Tracks that best match a text, best first.

        ``bpm`` ("60-90", or one tempo meaning +/- 4 %, octave errors allowed) and ``key``
        ("minor", "D", "D minor") restrict the results to tracks indexed with descriptors.
        """
        if not isinstance(text, str) or not text.strip():
            raise MelodexError("search text is empty")
        filters = self._filters(bpm=bpm, key=key)
        allowed = None
        if filters is not None and not self._native_search():
            allowed = self.store.filtered_ids(**filters)
        query = self.model.encode_text(text)
        return self._search_vector(query, k=k, allowed=allowed, filters=filters)

    def _filters(self, *, bpm: str | None, key: str | None) -> dict[str, Any] | None:
        """Parsed ``bpm``/``key`` filters as store keyword arguments (None: no filter)."""
        if bpm is None and key is None:
            return None
        from melodex.descriptors import parse_bpm_range, parse_key_filter

        try:
            bpm_range = parse_bpm_range(bpm) if bpm is not None else None
            key_filter = parse_key_filter(key) if key is not None else None
        except ValueError as exc:
            raise MelodexError(str(exc)) from exc
        return {"bpm": bpm_range, "key": key_filter}

    def similar(self, path_or_id: str | Path | int, *, k: int = 10) -> list[Hit]:
        """Tracks closest to a track (indexed or not); the track itself is left out."""
        vector, own_id = self._track_vector(path_or_id)
        hits = self._search_vector(vector, k=k + 1, exclude=own_id)
        return hits[:k]

    def describe(
        self,
        path: str | Path,
        *,
        k: int = 10,
        similar: bool = True,
        embedding: AudioEmbedding | None = None,
    ) -> Description:
        """What a track sounds like: its tags, the nearest built-in texts, similar tracks.

        ``similar=False`` leaves the similar tracks out (no search index is needed);
        ``embedding`` reuses one already made by :meth:`embed`.
        """
        emb = embedding if embedding is not None else self._embedding(path)
        texts, matrix = self._describe_vocabulary()
        scores = matrix @ emb.vector
        order = np.argsort(-scores, kind="stable")[:k]
        names = self.model.tag_names
        tag_order = np.argsort(-emb.tag_scores, kind="stable")[:k]
        hits: list[Hit] = []
        if similar and len(self) > 0:
            own = self.store.find_path(str(Path(os.path.expanduser(path)).resolve()))
            hits = self.nearest(emb.vector, k=k, exclude=own["id"] if own else None)
        return Description(
            path=str(path),
            tags=[(names[i], float(emb.tag_scores[i])) for i in tag_order],
            texts=[(texts[i], float(scores[i])) for i in order],
            similar=hits,
        )

    def embed(self, path: str | Path) -> AudioEmbedding:
        """A file's embedding: the stored one when the file is indexed and unchanged."""
        return self._embedding(path)

    def nearest(self, vector: np.ndarray, *, k: int = 10, exclude: int | None = None) -> list[Hit]:
        """Tracks nearest to an audio embedding vector (e.g. :meth:`embed` of any file)."""
        return self._search_vector(np.asarray(vector, np.float32), k=k + 1, exclude=exclude)[:k]

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
        version = 0 if store is None else store.version
        if store is None or len(store) == 0:
            return TrackMap(store_version=version, explained_variance=[0.0, 0.0], points=[])
        ids, vectors = store.vectors()
        rows = {r["id"]: r for r in store.rows(columns=["id", "title", "artist"])}
        coords, explained = pca_2d(vectors)
        points = []
        for tid, (x, y) in zip(ids.tolist(), coords.tolist(), strict=True):
            r = rows.get(tid, {})
            points.append(
                {"id": tid, "x": round(x, 5), "y": round(y, 5),
                 "title": r.get("title"), "artist": r.get("artist")}
            )  # fmt: skip
        return TrackMap(
            store_version=version,
            explained_variance=[round(float(v), 5) for v in explained],
            points=points,
        )

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
        pairs = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if int(i) != exclude]
        rows = {r["id"]: r for r in self.store.rows([i for i, _ in pairs], columns=HIT_COLUMNS)}
        hits = []
        for rank, (tid, score) in enumerate(pairs, start=1):
            row = rows.get(tid)
            if row is None:  # removed since the index was built
                continue
            windows = np.asarray(row["window_vectors"], np.float32).reshape(-1, len(query))
            start = None
            if len(windows):
                start = float(row["window_starts"][int(np.argmax(windows @ query))])
            hits.append(
                Hit(
                    rank=rank,
                    score=score,
                    id=tid,
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
        if row is not None and row["tag_scores"] is not None and os.path.exists(resolved):
            st = os.stat(resolved)
            if st.st_size == row["size"] and st.st_mtime_ns == row["mtime_ns"]:
                vec = np.asarray(row["vector"], np.float32)
                return AudioEmbedding(
                    vector=vec,
                    window_vectors=np.asarray(row["window_vectors"], np.float32).reshape(
                        -1, len(vec)
                    ),
                    window_starts=np.asarray(row["window_starts"], np.float32),
                    duration=float(row["duration"]),
                    tag_scores=np.asarray(row["tag_scores"], np.float32),
                )
        return self.model.embed_file(resolved)

    def _describe_vocabulary(self) -> tuple[list[str], np.ndarray]:
        if self._vocab is None:
            texts = describe_vocabulary()
            self._vocab = (texts, self.model.encode_text(texts))
        return self._vocab
