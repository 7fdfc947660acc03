"""``melodex search`` in a new process without torch, sentence-transformers or LanceDB.

The cold path: read the library's snapshot (:mod:`melodex.library.snapshot`), check it is
current and was made by the model the query would use, embed the text with the torch-free text
side of that model (:mod:`melodex.models.query_fast`, or the on-disk query cache), and search
the snapshot's vectors exactly as the in-memory index does. :func:`fast_search` returns None
whenever it cannot give the full path's answer, and the caller takes the full path; after that
:func:`refresh_snapshot` writes a current snapshot for the next process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from melodex.library.hits import Hit
from melodex.library.query_cache import QueryCache
from melodex.library.snapshot import Snapshot, write_snapshot

if TYPE_CHECKING:
    from melodex.library.library import Library

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
    cache = QueryCache(folder)
    query = cache.get(encoder.cache_key, text)
    if query is None or query.shape != (snapshot.header["dim"],):
        query = encoder.encode(text)
        cache.put(encoder.cache_key, text, query)
    return snapshot.search(query, k=k)


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
