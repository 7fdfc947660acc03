"""Store read paths kept fast for large libraries: lookup indexes and column-wise filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from melodex.library import store as store_module
from melodex.library.store import Store, TrackRow

DIM = 8
KEYS = ["C", "C#", "D", "A", None]
MODES = ["major", "minor", None]


def make_rows(ids: range, seed: int, *, descriptors: bool = True) -> list[TrackRow]:
    rng = np.random.default_rng(seed)
    out = []
    for i in ids:
        v = rng.standard_normal(DIM).astype(np.float32)
        v /= np.linalg.norm(v)
        has = descriptors and rng.random() < 0.8
        out.append(
            TrackRow(
                id=i,
                path=f"/music/o'neil/{i}.flac",
                content_hash=f"h{i}-{seed}",
                size=i,
                mtime_ns=seed,
                duration=1.0,
                title=f"t{i}",
                artist=None,
                album=None,
                genre=None,
                vector=v,
                window_vectors=v[None],
                window_starts=np.zeros(1, np.float32),
                tag_scores=np.zeros(3, np.float32),
                bpm=float(rng.uniform(40, 220)) if has else None,
                key=KEYS[rng.integers(len(KEYS))] if has else None,
                mode=MODES[rng.integers(len(MODES))] if has else None,
            )
        )
    return out


def reference_filter(store: Store, bpm: Any, key: Any, octaves: bool) -> list[int]:
    """The row-by-row definition filtered_ids must keep to."""
    keep = []
    factors = (1.0, 2.0, 0.5) if octaves else (1.0,)
    for r in store.rows(columns=["id", "bpm", "key", "mode"]):
        b = r["bpm"]
        if bpm is not None and (b is None or not any(bpm[0] <= b * f <= bpm[1] for f in factors)):
            continue
        if key is not None and not key(r["key"], r["mode"]):
            continue
        keep.append(r["id"])
    return keep


def test_filtered_ids_matches_the_row_by_row_rule(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    assert store.filtered_ids(bpm=(60.0, 90.0)).tolist() == []  # empty library
    store.upsert(make_rows(range(0, 300), 0))
    store.upsert(make_rows(range(300, 500), 1))  # two fragments
    minor = lambda k, m: m == "minor"  # noqa: E731
    sharp = lambda k, m: k is not None and "#" in k  # noqa: E731
    none_mode = lambda k, m: m is None  # noqa: E731
    for bpm in (None, (60.0, 90.0), (120.0, 120.0), (300.0, 400.0)):
        for key in (None, minor, sharp, none_mode):
            for octaves in (True, False):
                got = store.filtered_ids(bpm=bpm, key=key, octaves=octaves)
                assert got.dtype == np.int64
                assert got.tolist() == sorted(reference_filter(store, bpm, key, octaves))


def test_filtered_ids_follow_every_write_and_other_processes(tmp_path: Path) -> None:
    """The descriptor columns are cached per table version: a write here, a delete, and (after
    refresh) another process's write are all seen."""
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(make_rows(range(100), 0))
    every = (40.0, 220.0)
    want = lambda: sorted(reference_filter(store, every, None, False))  # noqa: E731
    assert store.filtered_ids(bpm=every).tolist() == want()
    store.delete(list(range(0, 100, 2)))
    assert store.filtered_ids(bpm=every).tolist() == want()
    other = Store(tmp_path / "db")
    other.upsert(make_rows(range(100, 160), 3))
    store.refresh()
    got = store.filtered_ids(bpm=every)
    assert got.tolist() == want()
    assert (got >= 100).sum() > 30


def test_filtered_ids_refuses_a_library_without_descriptors(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(make_rows(range(50), 0, descriptors=False))
    with pytest.raises(store_module.StoreError, match="no track has tempo/key"):
        store.filtered_ids(bpm=(60.0, 90.0))


def test_lookup_indexes_keep_reads_identical(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "SCALAR_INDEX_MIN_ROWS", 200)
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(make_rows(range(150), 0))
    store.compact()
    assert store._open_table().list_indices() == []  # below the size: no indexes
    store.upsert(make_rows(range(150, 400), 1))
    store.compact()
    indexed = {c for index in store._open_table().list_indices() for c in index.columns}
    assert indexed == {"id", "path"}

    # rows written after the indexes (not yet compacted), replaced rows and deleted rows
    store.upsert(make_rows(range(390, 420), 2))
    store.delete([5, 6, 7])
    for reader in (store, Store(tmp_path / "db")):
        got = reader.rows([419, 5, 3, 395, 100, 10_000], columns=["id", "content_hash"])
        assert [(r["id"], r["content_hash"]) for r in got] == [
            (419, "h419-2"),
            (3, "h3-0"),
            (395, "h395-2"),
            (100, "h100-0"),
        ]
        assert reader.find_path("/music/o'neil/410.flac")["content_hash"] == "h410-2"
        assert reader.find_path("/music/o'neil/200.flac")["content_hash"] == "h200-1"
        assert reader.find_path("/music/o'neil/6.flac") is None
        assert len(reader) == 417
    store.compact()  # folds the new rows into the indexes
    assert store.rows([419], columns=["id"]) == [{"id": 419}]
    assert sorted(store.ids().tolist()) == sorted(set(range(420)) - {5, 6, 7})


def test_upsert_appends_new_rows_and_replaces_known_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(make_rows(range(0, 20), 0))  # all new: appended
    store.upsert(make_rows(range(20, 40), 0))
    store.upsert(make_rows(range(30, 50), 1))  # some known: merged
    store.upsert(make_rows(range(0, 5), 2))  # all known: merged
    rows = {r["id"]: r["content_hash"] for r in store.rows(columns=["id", "content_hash"])}
    assert len(store) == 50 and sorted(rows) == list(range(50))
    assert [rows[i] for i in (0, 4, 5, 29, 30, 49)] == [
        "h0-2",
        "h4-2",
        "h5-0",
        "h29-0",
        "h30-1",
        "h49-1",
    ]
