"""The saved ANN index follows the store: built once, then updated with only what changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from melodex.library import search_index
from melodex.library.search_index import INDEX_DIR, sync_index
from melodex.library.store import Store, TrackRow

DIM = 16


def rows(ids: range, seed: int) -> list[TrackRow]:
    rng = np.random.default_rng(seed)
    out = []
    for i in ids:
        v = rng.standard_normal(DIM).astype(np.float32)
        v /= np.linalg.norm(v)
        out.append(
            TrackRow(
                id=i,
                path=f"/music/{i}.flac",
                content_hash=f"h{i}",
                size=1,
                mtime_ns=1,
                duration=1.0,
                title=None,
                artist=None,
                album=None,
                genre=None,
                vector=v,
                window_vectors=v[None],
                window_starts=np.zeros(1, np.float32),
                tag_scores=np.zeros(3, np.float32),
            )
        )
    return out


def top1(index, store: Store) -> tuple[np.ndarray, np.ndarray]:
    ids, vectors = store.vectors()
    _, found = index.search(vectors, k=1)
    return ids, found[:, 0]


def test_small_store_gets_exact_and_large_gets_saved_hnsw(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(rows(range(40), 0))
    assert sync_index(store, threshold=100).kind == "exact"

    store.upsert(rows(range(40, 300), 1))
    index = sync_index(store, threshold=100)
    assert index.kind == "hnsw" and len(index) == 300
    assert (tmp_path / "db" / INDEX_DIR / "index.json").exists()
    ids, found = top1(index, store)
    np.testing.assert_array_equal(found, ids)  # every vector finds itself

    # changes since the save: replaced vectors, new rows, deleted rows
    store.upsert(rows(range(0, 20), 7) + rows(range(300, 320), 8))
    store.delete(list(range(100, 130)))
    again = sync_index(Store(tmp_path / "db"), threshold=100)
    assert again.kind == "hnsw" and len(again) == 300 - 30 + 20
    ids, found = top1(again, store)
    np.testing.assert_array_equal(found, ids)


def test_damaged_saved_index_is_rebuilt_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(rows(range(200), 0))
    sync_index(store, threshold=50)
    header = tmp_path / "db" / INDEX_DIR / "index.json"
    header.write_text("{broken")
    index = sync_index(store, threshold=50)
    assert index.kind == "hnsw" and len(index) == 200
    assert header.read_text().startswith("{\n")


def test_an_index_in_memory_is_updated_in_place(tmp_path: Path, monkeypatch) -> None:
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(rows(range(300), 0))
    index = sync_index(store, threshold=100)
    assert index.kind == "hnsw" and index.synced_at == store.newest_indexed_at()
    header = tmp_path / "db" / INDEX_DIR / "index.json"
    saved = header.read_text()

    # a few changes: applied in memory, the saved copy is neither read nor rewritten
    store.upsert(rows(range(0, 10), 5) + rows(range(300, 330), 6))
    store.delete(list(range(200, 220)))
    again = sync_index(store, threshold=100, current=index)
    assert again is index and len(again) == 300 + 30 - 20
    assert again.synced_at == store.newest_indexed_at() and again.unsaved_changes == 60
    ids, found = top1(again, store)
    np.testing.assert_array_equal(found, ids)
    assert header.read_text() == saved
    # a new process loads the older saved copy and applies the same changes from the store
    fresh = sync_index(Store(tmp_path / "db"), threshold=100)
    assert fresh is not index and sorted(fresh.ids.tolist()) == sorted(again.ids.tolist())

    # nothing changed: the same object, untouched
    assert sync_index(store, threshold=100, current=again) is again
    # enough changes (or save=True, the indexer's way) and it is saved
    monkeypatch.setattr(search_index, "SAVE_AFTER_CHANGES", 80)
    store.upsert(rows(range(330, 360), 7))
    assert sync_index(store, threshold=100, current=again).unsaved_changes == 0
    assert header.read_text() != saved
    saved = header.read_text()
    store.upsert(rows(range(360, 361), 8))
    sync_index(store, threshold=100, current=again, save=True)
    assert header.read_text() != saved
    loaded = sync_index(Store(tmp_path / "db"), threshold=100)
    assert sorted(loaded.ids.tolist()) == sorted(again.ids.tolist())
