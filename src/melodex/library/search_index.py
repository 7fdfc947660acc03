"""Keep the search index beside the store in step with it, without rebuilding it every time.

Small libraries get an exact index built from the stored vectors in well under a second, so it
is simply rebuilt when the store changes. Above ``ANN_THRESHOLD`` tracks an HNSW graph takes
minutes to build, so it is saved in ``<library>/vector-index/`` with the newest ``indexed_at``
it has seen; the next process loads it and applies only what changed since: rows written later
are upserted, ids no longer in the store are removed. The indexer calls :func:`sync_index` at
the end of a run, so queries do not pay for the build.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

import numpy as np

from melodex.errors import StoreError
from melodex.library.store import Store
from melodex.library.vector_index import VectorIndex

INDEX_DIR = "vector-index"
SYNC_FILE = "sync.json"
EXACT_MAX_ELEMENTS = 12_800_000
"""Exact search while tracks x dim stays below this (100k tracks of a 128-d model, 139k of the
92-d default, 33k of a 384-d model), HNSW above. An exact scan is memory-bound, so its cost is
the matrix size: ~1.5 ms at 12.8M float32 on 2 cores, which keeps a text query (encoder + search)
near 10 ms; HNSW at ef 256 keeps recall@10 ~0.98 beyond (bench/bench_search.py)."""
EF_SEARCH = 256
SAVE_AFTER_CHANGES = 1000
"""Changes (tracks added, replaced or removed) after which a sync saves the HNSW index by itself;
a new process applies at most this many from the store on top of the saved copy (~1 s)."""


def exact_limit(dim: int) -> int:
    """Most tracks searched exactly for vectors of ``dim`` dimensions."""
    return max(1, EXACT_MAX_ELEMENTS // max(1, dim))


def sync_index(
    store: Store,
    *,
    threshold: int | None = None,
    current: VectorIndex | None = None,
    save: bool | None = None,
) -> VectorIndex | None:
    """An index that matches the store now (None for an empty store); ``threshold`` overrides
    the number of tracks above which HNSW is used. ``current``: an HNSW index this process got
    from an earlier call, updated in place instead of loading the saved one again (at 1M tracks
    a load takes ~3 s and, while the old index is still referenced, a second copy in memory).

    An updated HNSW index is saved when ``save`` is true (the indexer, at the end of a run), or
    by default once it holds ``SAVE_AFTER_CHANGES`` changes the saved copy lacks: a searching
    process that follows a running indexer would otherwise rewrite the whole graph (~2 s at 1M
    tracks) on the first query after every 16-track commit."""
    ids = store.ids()
    if len(ids) == 0:
        return None
    if threshold is None:
        threshold = exact_limit(store.dim or 1)
    if len(ids) <= threshold:
        all_ids, vectors = store.vectors()
        return VectorIndex.build(vectors, all_ids, kind="exact")
    folder = store.path / INDEX_DIR
    if current is not None and current.kind == "hnsw" and current.synced_at is not None:
        index, seen = current, current.synced_at
    else:
        index, seen = _load(folder, store.dim)
    if index is None or index.kind != "hnsw" or index.dim != store.dim:
        newest = store.newest_indexed_at()
        all_ids, vectors = store.vectors()
        index = VectorIndex.build(vectors, all_ids, kind="hnsw", ef_search=EF_SEARCH)
        _save(folder, index, newest)
        index.synced_at, index.unsaved_changes = newest, 0
        return index
    newest = store.newest_indexed_at()
    changed_ids, changed = store.vectors(since=seen)
    if len(changed_ids):
        index.add(changed, changed_ids)
    # Every stored id is now in the index (it was there at the last sync or was written since),
    # so the index holds ids the store lost exactly when it is the larger (a set difference of
    # 1M ids costs ~0.15 s, so it is done only then).
    gone = np.setdiff1d(index.ids, ids, assume_unique=True) if len(index) > len(ids) else ids[:0]
    if len(gone):
        index.remove(gone)
    index.unsaved_changes += len(changed_ids) + len(gone)
    if index.unsaved_changes and (
        save or (save is None and index.unsaved_changes >= SAVE_AFTER_CHANGES)
    ):
        _save(folder, index, newest)
        index.unsaved_changes = 0
    index.synced_at = newest
    return index


def _load(folder: Path, dim: int | None) -> tuple[VectorIndex | None, float]:
    try:
        seen = float(json.loads((folder / SYNC_FILE).read_text())["indexed_at"])
        return VectorIndex.load(folder, expected_dim=dim), seen
    except (OSError, ValueError, KeyError, StoreError):
        return None, 0.0  # missing or damaged: rebuilt from the store, which is the truth


def _save(folder: Path, index: VectorIndex, newest: float) -> None:
    """Save unless another process is saving right now (then it will have the same content)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".save.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        index.save(folder)
        tmp = folder / (SYNC_FILE + ".tmp")
        tmp.write_text(json.dumps({"indexed_at": newest}) + "\n")
        os.replace(tmp, folder / SYNC_FILE)


def drop_saved_index(store: Store) -> None:
    """Forget the saved index (it is rebuilt on next use)."""
    with contextlib.suppress(FileNotFoundError):
        (store.path / INDEX_DIR / SYNC_FILE).unlink()
