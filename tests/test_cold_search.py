"""The cold search path: snapshot, torch-free text tower, query cache, against the full path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melodex.library import snapshot as snap
from melodex.library.cold_search import DISABLE_ENV, fast_search, library_folder
from melodex.library.filters import split_negations
from melodex.library.library import Library
from melodex.library.query_cache import QueryCache
from melodex.library.snapshot import Snapshot, table_version, write_snapshot
from melodex.library.store import META_FILE, TABLE, Store, TrackRow
from melodex.library.text_index import TextIndex

QUERIES = [
    "calm solo piano", "aggressive metal with loud drums", "female vocal pop", "techno",
    "slow sad strings", "a fast electronic dance beat", "choir", "jazz guitar at night",
    "  padded text  ", "Ünïcödé café naïve", "no vocals", "sitar", "opera", "80s rock",
    "ambient drone for sleeping", "country", "harpsichord baroque", "male voice and cello",
    "x", "a " * 300, "Artist 3", "songs by Artist 5", "Title 12 jazz", "jazz", "piano not jazz",
]  # fmt: skip


def fill(db: Path, identity: str, dim: int, n: int, *, source: str | None = None) -> Store:
    """n synthetic tracks with 1-4 windows, some fields missing, one non-UTF-8 path."""
    rng = np.random.default_rng(7)
    store = Store(db, create=True)
    store.bind_model(identity, identity.split("@")[0], dim, source=source)
    rows = []
    for i in range(n):
        vec = rng.random(dim).astype(np.float32) ** 3  # clumpy, non-negative, like tag spaces
        w = int(rng.integers(1, 5))
        windows = np.abs(vec + rng.normal(0, 0.2, (w, dim))).astype(np.float32)
        rows.append(
            TrackRow(
                id=1000 + i,
                path=f"/music/caf\udce9 {i}.flac" if i == 3 else f"/music/{i:04d}.flac",
                content_hash=f"{i:x}",
                size=1,
                mtime_ns=0,
                duration=30.0 + i,
                title=None if i % 5 == 0 else f"Title {i}",
                artist=f"Artist {i % 7}",
                album=None,
                genre="jazz" if i % 2 else None,
                vector=vec / np.linalg.norm(vec),
                window_vectors=windows / np.linalg.norm(windows, axis=1, keepdims=True),
                window_starts=np.arange(w, dtype=np.float32) * 3.0,
                tag_scores=np.zeros(3, np.float32),
                bpm=None if i % 3 else 90.0 + i / 7,
                key=None if i % 3 else "D",
                mode=None if i % 3 else "minor",
            )
        )
    with store.writing():
        store.upsert(rows[: n // 2])
        store.upsert(rows[n // 2 :])
    return store


def test_constants_match_the_store() -> None:
    assert snap.META_FILE == META_FILE
    assert f"{TABLE}.lance" == snap.TABLE_DIR


def test_snapshot_gives_the_full_paths_hits(tmp_path: Path, toy_model) -> None:
    store = fill(tmp_path / "lib", toy_model.identity, toy_model.dim, 300)
    assert write_snapshot(store) is not None
    assert table_version(store.path) == store.version
    lib = Library(tmp_path / "lib", model=toy_model)
    found = Snapshot.open(tmp_path / "lib")
    assert found is not None
    rng = np.random.default_rng(0)
    for _ in range(12):
        q = np.abs(rng.normal(size=toy_model.dim)).astype(np.float32) ** 2
        q /= np.linalg.norm(q)
        k = int(rng.integers(1, 20))
        ref = [h.to_json() for h in lib._search_vector(q, k=k)]
        got = [h.to_json() for h in found.search(q, k=k)]
        assert got == ref  # ids, order, scores, rows and segments: the same, not close
    assert any(h["path"].startswith("/music/caf\udce9") for h in found_all(found, toy_model.dim))


def found_all(found: Snapshot, dim: int) -> list[dict]:
    return [h.to_json() for h in found.search(np.ones(dim, np.float32) / np.sqrt(dim), k=10**6)]


def test_a_write_or_another_model_makes_the_snapshot_stale(tmp_path: Path, toy_model) -> None:
    store = fill(tmp_path / "lib", toy_model.identity, toy_model.dim, 20)
    write_snapshot(store)
    assert Snapshot.open(store.path) is not None
    with store.writing():
        store.delete([1000])
    assert Snapshot.open(store.path) is None  # the table moved on
    write_snapshot(store)
    assert Snapshot.open(store.path) is not None
    meta = json.loads((store.path / META_FILE).read_text())
    (store.path / META_FILE).write_text(json.dumps({**meta, "model": "other@0"}))
    assert Snapshot.open(store.path) is None  # not the model that made the vectors
    (store.path / META_FILE).write_text(json.dumps(meta))
    (store.path / snap.SNAPSHOT_FILE).write_bytes(b"garbage")
    assert Snapshot.open(store.path) is None


def test_fast_search_declines_what_it_cannot_answer(tmp_path: Path, toy_model, monkeypatch) -> None:
    store = fill(tmp_path / "lib", toy_model.identity, toy_model.dim, 20, source="toy")
    write_snapshot(store)
    assert fast_search(tmp_path / "lib", "piano", k=5) is None  # a model it cannot run
    assert fast_search(tmp_path / "none", "piano", k=5) is None  # no library
    assert fast_search("chroma://localhost:8000/x", "piano", k=5) is None
    assert library_folder("chroma+https://h/c") is None
    monkeypatch.setenv("MELODEX_DB", str(tmp_path / "env"))
    assert library_folder(None) == tmp_path / "env"
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert fast_search(tmp_path / "lib", "piano", k=5) is None


def test_query_cache(tmp_path: Path) -> None:
    cache = QueryCache(tmp_path, max_entries=3)
    assert cache.get("m@1", "piano") is None
    cache.put("m@1", "piano", np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(cache.get("m@1", "piano"), np.arange(4, dtype=np.float32))
    assert cache.get("m@2", "piano") is None  # another model
    assert cache.get("m@1", "piano ") is None  # another text
    for i in range(5):
        cache.put("m@1", f"t{i}", np.full(4, i, np.float32))
    assert cache.get("m@1", "piano") is None  # the oldest went
    assert cache.get("m@1", "t4") is not None
    QueryCache(tmp_path / "missing").put("m@1", "x", np.zeros(2, np.float32))  # no error


def test_length_batches_keep_long_texts_from_padding_short_ones() -> None:
    from melodex.encoders.minilm_numpy import length_batches

    lengths = [8, 256, 7, 9, 3, 100, 120, 4]
    got = [b.tolist() for b in length_batches(lengths, 64)]
    assert got == [[1], [6, 5], [3, 0, 2, 7, 4]]  # longest first; 9 vs 3: within the slack
    got = [b.tolist() for b in length_batches([5] * 7, 3)]
    assert got == [[0, 1, 2], [3, 4, 5], [6]]  # stable, at most batch_size


@pytest.mark.heavy
def test_numpy_text_tower_matches_sentence_transformers() -> None:
    from melodex.encoders.minilm_numpy import NumpyMiniLM
    from melodex.encoders.text import TextEncoder

    ref = TextEncoder("all-MiniLM-L6-v2", cache_size=0)
    fast = NumpyMiniLM("all-MiniLM-L6-v2")
    words = ["calm", "loud", "piano", "drums", "female", "vocal", "night", "dance", "sad"]
    rng = np.random.default_rng(1)
    texts = QUERIES + [" ".join(rng.choice(words, int(rng.integers(1, 12)))) for _ in range(12)]
    got = fast.encode(texts)
    want = ref.encode(texts)
    assert np.abs(got - want).max() < 2e-6
    one = np.stack([fast.encode([t])[0] for t in QUERIES])  # unpadded, one at a time
    assert np.abs(one - ref.encode(QUERIES)).max() < 2e-6


@pytest.mark.heavy
def test_fast_search_equals_library_search(tmp_path: Path, base_model) -> None:
    store = fill(tmp_path / "lib", base_model.identity, base_model.dim, 400, source="melodex-base")
    write_snapshot(store)
    lib = Library(tmp_path / "lib")
    for text in QUERIES:
        if split_negations(text)[1]:  # "no X" / "not X": only the full path applies the penalty
            assert fast_search(tmp_path / "lib", text, k=10) is None
            continue
        ref = [h.to_json() for h in lib.search(text, k=10)]
        for _ in range(2):  # computed, then from the query cache
            got = fast_search(tmp_path / "lib", text, k=10)
            assert got is not None
            got_json = [h.to_json() for h in got]
            assert [h["id"] for h in got_json] == [h["id"] for h in ref]
            assert [h["segment_start"] for h in got_json] == [h["segment_start"] for h in ref]
            scores = np.array(
                [[a["score"], b["score"]] for a, b in zip(got_json, ref, strict=True)]
            )
            assert np.abs(scores[:, 0] - scores[:, 1]).max() < 1e-5


def test_quick_entry_parses_only_plain_searches() -> None:
    from melodex.quick import parse_search

    got = parse_search(["search", "calm piano", "-k", "5", "--db=/x", "--json"])
    assert got == {"text": "calm piano", "k": 5, "db": "/x", "model": None, "json": True}
    assert parse_search(["search", "--model", "m", "jazz"])["model"] == "m"
    for args in (
        ["search"],
        ["index", "x"],
        ["search", "a", "--bpm", "60-90"],
        ["search", "a", "b"],
        ["search", "a", "-k", "0"],
        ["search", "a", "-k", "x"],
        ["search", "a", "-k5"],
        ["search", "a", "--json", "--json"],
        ["search", "a", "--db"],
        ["search", "--help"],
        ["search", "-", "a"],
    ):
        assert parse_search(args) is None, args


def test_quick_json_is_the_cli_contract() -> None:
    from melodex.cli.common import json_text as cli_json
    from melodex.quick import json_text

    data = [{"path": "/m/caf\udce9 ü.flac", "score": 0.5, "title": None, "n": [1, 2]}]
    assert json_text(data) == cli_json(data)


def test_quick_entry_answers_from_the_snapshot(tmp_path: Path, capsys) -> None:
    from melodex.models.query_fast import fast_query_encoder
    from melodex.quick import json_text, main

    encoder = fast_query_encoder("melodex-base")
    assert encoder is not None
    store = fill(tmp_path / "lib", encoder.identity, encoder.config.dim, 30, source="melodex-base")
    write_snapshot(store)
    TextIndex(store.path).sync(store)  # the cold path ranks like the hybrid search
    main(["search", "calm piano", "--db", str(tmp_path / "lib"), "-k", "3", "--json"])
    printed = capsys.readouterr().out
    hits = fast_search(tmp_path / "lib", "calm piano", k=3)
    assert printed == json_text([h.to_json() for h in hits]) + "\n"
    assert len(json.loads(printed)) == 3


def test_cold_path_needs_a_text_index_of_the_snapshots_version(tmp_path: Path) -> None:
    from melodex.models.query_fast import fast_query_encoder

    encoder = fast_query_encoder("melodex-base")
    assert encoder is not None
    store = fill(tmp_path / "lib", encoder.identity, encoder.config.dim, 20, source="melodex-base")
    write_snapshot(store)
    assert fast_search(tmp_path / "lib", "Artist 3", k=3) is None  # no text index yet
    TextIndex(store.path).sync(store)
    hits = fast_search(tmp_path / "lib", "Artist 3", k=3)
    assert hits is not None and all(h.artist == "Artist 3" for h in hits)
    assert hits[0].text_score is not None  # fused with the metadata match
