"""``melodex search`` in a new process without torch, sentence-transformers or LanceDB.

The cold path: read the library's snapshot (:mod:`melodex.library.snapshot`), check it is
current and was made by the model the query would use, embed the text with the torch-free text
side of that model (:mod:`melodex.models.query_fast`, or the on-disk query cache), and rank
the snapshot's vectors with the full-text index's matches exactly as ``Library.search`` does
(hybrid fusion, :mod:`melodex.library.hybrid`). :func:`fast_search` returns None
whenever it cannot give the full path's answer, and the caller takes the full path; after that
:func:`refresh_snapshot` writes a current snapshot for the next process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from melodex.library.hits import Hit
from melodex.library.query_cache import QueryCache
from melodex.library.snapshot import Snapshot, write_snapshot

if TYPE_CHECKING:
    from melodex.library.library import Library
    from melodex.library.text_index import TextIndex

DISABLE_ENV = "MELODEX_NO_SNAPSHOT"
"""Set (to anything) to take the full path always and write no snapshot (benchmarks, doubt)."""


def library_folder(db: str | Path | None) -> Path | None:
    """The folder ``--db`` (or ``$MELODEX_DB``, or the default) names; None for a store URL."""
    if db is None:
        db = os.environ.get("MELODEX_DB")
        if not db:
            from platformdirs import user_data_dir

            return Path(user_data_dir("melodex")) / "library"
    text = str(db).strip()
    if text.lower().startswith("chroma"):
        return None  # chroma:// URLs (backends.is_store_url): a networked store
    return Path(os.path.expanduser(text))


def fast_search(
    db: str | Path | None, text: str, *, k: int, model: str | None = None
) -> list[Hit] | None:
    """The hits ``Library(db, model=model).search(text, k=k)`` gives, or None when only the
    full path can answer (no current snapshot, another model, an empty text...)."""
    if os.environ.get(DISABLE_ENV) or not isinstance(text, str) or not text.strip() or k < 1:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None  # the full path names the bad byte
    from melodex.library.filters import split_negations

    if split_negations(text)[1]:
        return None  # "no X" / "not X": the full path embeds X and applies the penalty
    folder = library_folder(db)
    if folder is None:
        return None
    snapshot = Snapshot.open(folder)
    if snapshot is None:
        return None
    source = model if model is not None else snapshot.meta.get("model_source")
    if not source:
        return None
    from melodex.models.query_fast import fast_query_encoder

    encoder = fast_query_encoder(source)
    if encoder is None or encoder.identity != snapshot.meta.get("model"):
        return None  # the full path loads the model, and says why it does not match
    text_index = current_text_index(folder, snapshot.header.get("version"))
    if text_index is None:
        return None  # the full path brings the text index up to date (and the snapshot)
    cache = QueryCache(folder)
    query = cache.get(encoder.cache_key, text)
    if query is None or query.shape != (snapshot.header["dim"],):
        query = encoder.encode(text)
        cache.put(encoder.cache_key, text, query)
    return hybrid_hits(snapshot, text_index, text, query, k=k)


def current_text_index(folder: Path, version: Any) -> TextIndex | None:
    """The library's full-text index if it exists and was synced at the snapshot's store
    version (never created or synced here: that needs the store)."""
    from melodex.library.text_index import TEXT_INDEX_FILE, TextIndex

    if version is None or not (folder / TEXT_INDEX_FILE).is_file():
        return None
    index = TextIndex(folder)
    if index.store_version() != int(version):
        index.close()
        return None
    return index


def hybrid_hits(
    snapshot: Snapshot, text_index: TextIndex, text: str, query: np.ndarray, *, k: int
) -> list[Hit]:
    """``Library.search``'s default (hybrid) ranking, on the snapshot's vectors."""
    from melodex.library.hybrid import rank

    try:
        text_hits = text_index.match(text, limit=max(100, k))
    finally:
        text_index.close()
    ranked = rank(top=snapshot.top, query=np.asarray(query, np.float32), text_hits=text_hits, k=k)
    return snapshot.hits([(r.id, r.score, r.vector_score, r.text_score) for r in ranked], query)


def refresh_snapshot(lib: Library) -> None:
    """Write a current snapshot after a full-path search found none (the next cold query is
    fast); never fails the search it follows."""
    if os.environ.get(DISABLE_ENV):
        return
    try:
        store = lib.store_or_none()
        if store is not None and Snapshot.open(Path(store.path)) is None:
            write_snapshot(store)
    except Exception:  # noqa: BLE001 (an optimisation only: the search already answered)
        return


class CurrentSnapshot:
    """A library's snapshot at its store's current version, for a warm process's hits.

    Why: reading 10 hits' rows from LanceDB took ~7 ms of a ~13 ms warm search at 10k tracks
    (bench/bench_serve.py); the snapshot holds the same rows memory-mapped, and a test checks
    both give equal hits (tests/test_serve_speed.py). One is written when missing, once per
    store version; None for a networked store, a library too large for a snapshot, or with
    ``$MELODEX_NO_SNAPSHOT`` set.
    """

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self._tried = -1

    def get(self, lib: Library) -> Snapshot | None:
        store = lib.store
        if os.environ.get(DISABLE_ENV) or not isinstance(getattr(store, "path", None), Path):
            return None
        version = store.version
        snap = self.snapshot
        if snap is not None and snap.header.get("version") == version and snap.meta == store.meta:
            return snap
        if self._tried == version:
            return None  # none could be had at this version
        self._tried, self.snapshot = version, None
        refresh_snapshot(lib)  # writes one only when none is current
        snap = Snapshot.open(Path(store.path))
        if snap is not None and snap.header.get("version") == version and snap.meta == store.meta:
            self.snapshot = snap
        return self.snapshot
