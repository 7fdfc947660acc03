"""The server's fast paths give the answers of the paths they replace (issue 17): hits read
from the search snapshot, store versions remembered between refreshes, query texts of
concurrent searches embedded in one batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from melodex.library.cold_search import DISABLE_ENV
from melodex.library.filters import split_negations
from melodex.library.library import Library
from melodex.library.snapshot import SNAPSHOT_FILE
from melodex.library.store import Store, TrackRow
from melodex.serve.batching import QueryBatcher
from tests.test_cold_search import QUERIES, fill

SEARCHABLE = [t for t in QUERIES if split_negations(t)[0].strip()]  # "no vocals" alone: none


def _row(i: int, dim: int) -> TrackRow:
    vec = np.full(dim, 1.0 / np.sqrt(dim), np.float32)
    return TrackRow(
        id=i, path=f"/new/{i}.flac", content_hash=f"n{i}", size=1, mtime_ns=0, duration=9.0,
        title=f"Newcomer {i}", artist=None, album=None, genre=None, vector=vec,
        window_vectors=vec[None], window_starts=np.zeros(1, np.float32),
        tag_scores=np.zeros(3, np.float32),
    )  # fmt: skip


def test_hits_from_the_snapshot_equal_the_stores_rows(
    tmp_path: Path, toy_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "lib"
    store = fill(db, toy_model.identity, toy_model.dim, 300)
    fast, slow = Library(db, model=toy_model), Library(db, model=toy_model)

    def both(call):  # noqa: ANN001, ANN202
        got = [h.to_json() for h in call(fast)]
        with monkeypatch.context() as m:
            m.setenv(DISABLE_ENV, "1")
            want = [h.to_json() for h in call(slow)]
        assert got == want  # ids, order, scores, rows, segments: equal, not close
        return got

    for text in SEARCHABLE:
        for mode in ("hybrid", "vector", "text"):
            both(lambda lib, t=text, m=mode: lib.search(t, k=10, mode=m))
    both(lambda lib: lib.similar(1005, k=7))
    assert fast._snapshots.snapshot is not None  # the fast path ran
    assert (db / SNAPSHOT_FILE).is_file()
    # a write moves the store on: the next search sees the new track (a new snapshot)
    with store.writing():
        store.upsert([_row(5000, toy_model.dim)])
    vec = _row(5000, toy_model.dim).vector
    found = both(lambda lib: lib.nearest(vec, k=3))
    assert found[0]["id"] == 5000 and found[0]["title"] == "Newcomer 5000"
    assert fast._snapshots.snapshot is not None
    assert fast._snapshots.snapshot.header["version"] == store.version


def test_a_store_remembers_its_version_until_a_refresh_or_a_write(
    tmp_path: Path, toy_model
) -> None:
    db = tmp_path / "lib"
    writer = fill(db, toy_model.identity, toy_model.dim, 20)
    reader = Store(db)
    v0, n0 = reader.version, len(reader)
    assert (v0, n0) == (writer.version, 20)
    with writer.writing():
        writer.upsert([_row(7000, toy_model.dim)])
    assert (writer.version, len(writer)) == (v0 + 1, 21)  # its own write: seen at once
    assert (reader.version, len(reader)) == (v0, 20)  # LanceDB's reader: as before refresh
    reader.refresh()
    assert (reader.version, len(reader)) == (v0 + 1, 21)
    reader.refresh()  # nothing new: the listing says so, no checkout
    assert reader.version == v0 + 1
    with writer.writing():
        writer.delete([7000])
        writer.compact()
    reader.refresh()
    assert (reader.version, len(reader)) == (writer.version, 20)
    assert reader.rows([7000]) == []


def test_concurrent_texts_are_embedded_in_one_batch() -> None:
    calls: list[list[str]] = []
    started = threading.Event()

    def encode(texts: list[str]) -> None:
        calls.append(texts)
        started.set()
        time.sleep(0.3 if len(calls) == 1 else 0.01)  # the first batch is slow: others queue

    batcher = QueryBatcher(encode, max_batch=4)
    first = threading.Thread(target=batcher.prime, args=("first",))
    first.start()
    assert started.wait(5)
    texts = [f"t{i}" for i in range(7)]
    threads = [threading.Thread(target=batcher.prime, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    time.sleep(0.1)  # all waiting while "first" embeds
    for t in [first, *threads]:
        t.join(5)
        assert not t.is_alive()
    assert calls[0] == ["first"]
    assert sorted(x for c in calls[1:] for x in c) == texts  # each text once
    assert [len(c) for c in calls[1:]] == [4, 3]  # all queued behind the first: 2 batches
    assert batcher.batches == [1, 4, 3]


def test_a_failed_batch_lets_each_search_go_on() -> None:
    def encode(texts: list[str]) -> None:
        raise RuntimeError("broken")

    batcher = QueryBatcher(encode)
    batcher.prime("anything")  # returns: the search embeds its text itself and reports errors
    assert batcher.batches == []


@pytest.mark.heavy
def test_served_searches_rank_as_searches_alone(
    tmp_path: Path, base_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent searches through the server's service (texts batched, rows from the
    snapshot) against ``Library.search`` one at a time with no snapshot and no cache."""
    from melodex.serve.service import LibraryService, ServeConfig

    db = tmp_path / "lib"
    fill(db, base_model.identity, base_model.dim, 400, source="melodex-base")
    texts = SEARCHABLE
    service = LibraryService(ServeConfig(db=db, model=base_model))
    results: dict[str, list[dict]] = {}

    def ask(text: str) -> None:
        results[text] = [h.to_json() for h in service.search(text, 10, mode="hybrid")]

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert service._batcher is not None and max(service._batcher.batches) > 1
    monkeypatch.setenv(DISABLE_ENV, "1")  # rows from LanceDB, as before the snapshot
    lib = Library(db, model=base_model)
    for text in texts:
        base_model.text_encoder._cache.clear()  # noqa: SLF001 (each text embedded alone)
        ref = [h.to_json() for h in lib.search(text, k=10)]
        got = results[text]
        assert [h["id"] for h in got] == [h["id"] for h in ref], text
        assert [h["segment_start"] for h in got] == [h["segment_start"] for h in ref], text
        scores = np.array([[a["score"], b["score"]] for a, b in zip(got, ref, strict=True)])
        assert np.abs(scores[:, 0] - scores[:, 1]).max() < 1e-5, text
