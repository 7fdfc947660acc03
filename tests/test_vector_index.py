"""VectorIndex: exact against brute force, HNSW recall, updates, filtering, persistence."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import ParameterError, StoreError
from melodex.library.vector_index import EXACT_FILTER_LIMIT, VectorIndex, ids_fingerprint

_SYNTH_PATH = Path(__file__).resolve().parents[1] / "bench" / "synthetic.py"
_spec = importlib.util.spec_from_file_location("melodex_bench_synthetic", _SYNTH_PATH)
assert _spec is not None and _spec.loader is not None
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

DIM = 32


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sparse_ids(n: int, seed: int = 0) -> np.ndarray:
    """Non-contiguous ids, some negative, to catch row/id confusion."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.arange(-5_000, 10_000_000, 7), size=n, replace=False).astype(np.int64)


def brute_force(
    vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ vectors.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vecs = synthetic.clustered_vectors(4_000, 64, n_clusters=60, spread=0.5, seed=3)
    queries = synthetic.clustered_queries(200, 64, n_clusters=60, spread=0.5, seed=3)
    return vecs, sparse_ids(len(vecs), seed=3), queries


@pytest.fixture(scope="module")
def hnsw_index(clustered: tuple[np.ndarray, np.ndarray, np.ndarray]) -> VectorIndex:
    vecs, ids, _ = clustered
    return VectorIndex.build(vecs, ids, kind="hnsw", m=16, ef_construction=100, ef_search=64)


# --------------------------------------------------------------------------- exact search
def test_exact_matches_brute_force() -> None:
    vecs, ids, queries = unit(3_000), sparse_ids(3_000), unit(50, seed=9)
    index = VectorIndex.build(vecs, ids)
    assert index.kind == "exact" and index.dim == DIM and len(index) == 3_000
    scores, found = index.search(queries, k=10)
    ref_scores, ref_ids = brute_force(vecs, ids, queries, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    assert scores.shape == found.shape == (50, 10)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert (found == ref_ids).mean() > 0.99  # ties aside
    assert np.all(np.diff(scores, axis=1) <= 0)
    for row in range(5):  # the single-query (einsum) path agrees with the batched (BLAS) one
        one_scores, one_ids = index.search(queries[row], k=10)
        np.testing.assert_allclose(one_scores[0], scores[row], atol=1e-5)
        np.testing.assert_array_equal(one_ids[0], found[row])


def test_single_query_and_dtype_conversion() -> None:
    vecs, ids = unit(100), np.arange(100) * 3
    index = VectorIndex.build(vecs.astype(np.float64), ids.astype(np.int32))
    scores, found = index.search(vecs[7].astype(np.float64), k=1)
    assert found.shape == (1, 1) and found[0, 0] == 21
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_k_larger_than_index_and_empty_index() -> None:
    index = VectorIndex.build(unit(5), np.arange(5))
    scores, found = index.search(unit(2, seed=1), k=50)
    assert scores.shape == found.shape == (2, 5)
    assert sorted(found[0].tolist()) == [0, 1, 2, 3, 4]
    for kind in ("exact", "hnsw"):
        empty = VectorIndex.build(np.zeros((0, DIM), np.float32), np.zeros(0, np.int64), kind=kind)
        assert len(empty) == 0
        scores, found = empty.search(unit(3), k=10)
        assert scores.shape == found.shape == (3, 0)
        assert scores.dtype == np.float32 and found.dtype == np.int64


def test_input_validation() -> None:
    vecs = unit(10)
    with pytest.raises(ParameterError, match="got 10 vectors but 9 ids"):
        VectorIndex.build(vecs, np.arange(9))
    with pytest.raises(ParameterError, match="duplicates"):
        VectorIndex.build(vecs, np.zeros(10, dtype=np.int64))
    bad = vecs.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ParameterError, match=r"NaN or infinite.*row 4"):
        VectorIndex.build(bad, np.arange(10))
    with pytest.raises(ParameterError, match="L2-normalised: row 0"):
        VectorIndex.build(vecs * 2, np.arange(10))
    with pytest.raises(ParameterError, match="ids must be integers"):
        VectorIndex.build(vecs, np.arange(10, dtype=np.float64))
    with pytest.raises(ParameterError, match="kind must be"):
        VectorIndex.build(vecs, np.arange(10), kind="ivf")
    index = VectorIndex.build(vecs, np.arange(10))
    with pytest.raises(ParameterError, match="queries have dimension 16, the index has 32"):
        index.search(unit(1, dim=16))
    with pytest.raises(ParameterError, match="queries contain NaN"):
        index.search(np.full(DIM, np.inf))
    with pytest.raises(ParameterError, match="k must be at least 1"):
        index.search(vecs[0], k=0)
    with pytest.raises(ParameterError, match="vectors have dimension 16"):
        index.add(unit(1, dim=16), [99])


# --------------------------------------------------------------------------- kinds
def test_auto_chooses_by_threshold() -> None:
    vecs = unit(300)
    assert VectorIndex.build(vecs[:200], np.arange(200), ann_threshold=250).kind == "exact"
    index = VectorIndex.build(vecs, np.arange(300), ann_threshold=250, m=8)
    assert index.kind == "hnsw" and not index.needs_rebuild
    index.remove(np.arange(100))
    assert index.needs_rebuild  # auto-chosen kind no longer fits the count
    assert not VectorIndex.build(vecs, np.arange(300), kind="hnsw").needs_rebuild


def test_hnsw_recall_on_clustered_vectors(
    clustered: tuple[np.ndarray, np.ndarray, np.ndarray], hnsw_index: VectorIndex
) -> None:
    vecs, ids, queries = clustered
    _, truth = VectorIndex.build(vecs, ids, kind="exact").search(queries, k=10)
    scores, found = hnsw_index.search(queries, k=10)
    assert hnsw_index.kind == "hnsw" and found.shape == (200, 10)
    assert recall(found, truth) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 0)
    # hnsw scores are real inner products
    lookup = {int(i): r for r, i in enumerate(ids)}
    np.testing.assert_allclose(
        scores[0], vecs[[lookup[int(i)] for i in found[0]]] @ queries[0], atol=1e-5
    )


# --------------------------------------------------------------------------- updates
@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_add_upsert_remove(kind: str) -> None:
    vecs, ids = unit(500), sparse_ids(500)
    index = VectorIndex.build(vecs[:400], ids[:400], kind=kind, m=8)
    index.add(vecs[400:], ids[400:])  # new ids
    assert len(index) == 500
    # upsert: id ids[0] now carries the vector of ids[499]'s neighbour direction
    replacement = unit(1, seed=77)
    index.add(replacement, ids[:1])
    assert len(index) == 500
    scores, found = index.search(replacement, k=1)
    assert found[0, 0] == ids[0] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    _, found = index.search(vecs[0], k=1)
    assert found[0, 0] != ids[0]  # the old vector is gone
    # remove (unknown ids ignored)
    index.remove(np.concatenate([ids[10:20], [123456789123]]))
    assert len(index) == 490
    assert not set(ids[10:20]) & set(index.ids.tolist())
    _, found = index.search(vecs[:50], k=20)
    assert not set(found.ravel()) & set(ids[10:20])
    for row in (30, 250, 450):  # surviving items still find themselves
        _, found = index.search(vecs[row], k=1)
        assert found[0, 0] == ids[row]
    # re-adding a removed id revives it
    index.add(vecs[10:11], ids[10:11])
    assert len(index) == 491
    assert index.search(vecs[10], k=1)[1][0, 0] == ids[10]
    assert index.fingerprint == ids_fingerprint(np.concatenate([ids[:10], ids[20:], ids[10:11]]))


def test_exact_grows_past_capacity() -> None:
    vecs, ids = unit(5_000), sparse_ids(5_000)
    index = VectorIndex.build(vecs[:10], ids[:10])
    for start in range(10, 5_000, 700):
        index.add(vecs[start : start + 700], ids[start : start + 700])
    assert len(index) == 5_000 and index._vectors.flags.c_contiguous
    scores, found = index.search(vecs[:20], k=5)
    ref_scores, _ = brute_force(vecs, ids, vecs[:20], 5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


# --------------------------------------------------------------------------- filtering
@pytest.mark.parametrize("n_allowed", [7, 300, 2_500])
def test_allowed_exact(n_allowed: int) -> None:
    vecs, ids, queries = unit(3_000), sparse_ids(3_000), unit(20, seed=5)
    rng = np.random.default_rng(n_allowed)
    rows = rng.choice(3_000, size=n_allowed, replace=False)
    allowed = np.concatenate([ids[rows], [-999_999]])  # an unknown id is ignored
    index = VectorIndex.build(vecs, ids)
    scores, found = index.search(queries, k=10, allowed=allowed)
    ref_scores, ref_ids = brute_force(vecs[rows], ids[rows], queries, 10)
    assert found.shape == (20, min(10, n_allowed))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert set(found.ravel()) <= set(ids[rows])


def test_allowed_in_any_order_or_repeated_gives_the_same_answer() -> None:
    """Sorted ids skip the np.unique; shuffled and repeated ones take it: the same results."""
    vecs, ids, queries = unit(2_000), sparse_ids(2_000), unit(10, seed=3)
    index = VectorIndex.build(vecs, ids)
    chosen = np.sort(np.random.default_rng(1).choice(ids, size=600, replace=False))
    want = index.search(queries, k=10, allowed=chosen)
    for variant in (chosen[::-1], np.concatenate([chosen, chosen[:50]]), chosen.astype(np.int32)):
        got = index.search(queries, k=10, allowed=variant)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


def test_allowed_hnsw_small_and_large(
    clustered: tuple[np.ndarray, np.ndarray, np.ndarray],
    hnsw_index: VectorIndex,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vecs, ids, queries = clustered
    rng = np.random.default_rng(11)
    rows = rng.choice(len(vecs), size=1_500, replace=False)
    _, truth = brute_force(vecs[rows], ids[rows], queries, 10)
    # small subset: scored exactly
    _, found = hnsw_index.search(queries, k=10, allowed=ids[rows])
    assert recall(found, truth) == pytest.approx(1.0, abs=0.01)
    # force the graph-walk path with hnswlib's filter callback
    monkeypatch.setattr("melodex.library.vector_index.EXACT_FILTER_LIMIT", 100)
    _, found = hnsw_index.search(queries, k=10, allowed=ids[rows])
    assert set(found.ravel()) <= set(ids[rows])
    assert recall(found, truth) >= 0.9
    assert EXACT_FILTER_LIMIT >= 1_000
    _, none = hnsw_index.search(queries[:2], k=10, allowed=np.array([], dtype=np.int64))
    assert none.shape == (2, 0)


def test_a_repeated_filter_reuses_its_live_ids_until_the_index_changes(
    clustered: tuple[np.ndarray, np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    vecs, ids, queries = clustered
    index = VectorIndex.build(vecs, ids, kind="hnsw", m=8, ef_search=64)
    monkeypatch.setattr("melodex.library.vector_index.EXACT_FILTER_LIMIT", 100)
    allowed = np.sort(ids[np.random.default_rng(2).random(len(ids)) < 0.3])
    first = index.search(queries, k=10, allowed=allowed)
    memo = index._filter_memo
    index.search(queries, k=10, allowed=allowed[:50])  # a small filter (hybrid's extra ids)
    again = index.search(queries, k=10, allowed=allowed.copy())
    assert index._filter_memo is memo  # reused, not rebuilt
    np.testing.assert_array_equal(first[1], again[1])
    # a removed id stops being allowed at once
    best = first[1][0, 0]
    index.remove(np.array([best]))
    after = index.search(queries[:1], k=10, allowed=allowed)
    assert best not in set(after[1].ravel()) and index._filter_memo is not memo


# --------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_load_round_trip(kind: str, tmp_path: Path) -> None:
    vecs, ids, queries = unit(800), sparse_ids(800), unit(10, seed=4)
    index = VectorIndex.build(vecs, ids, kind=kind, m=8, ef_search=40)
    index.remove(ids[:5])
    index.save(tmp_path / "idx")
    index.save(tmp_path / "idx")  # a second save replaces the first, leaving no stale files
    assert len(list((tmp_path / "idx").iterdir())) == 3
    loaded = VectorIndex.load(tmp_path / "idx", expected_dim=DIM)
    assert (loaded.kind, loaded.dim, len(loaded)) == (kind, DIM, 795)
    assert loaded.params["ef_search"] == 40 and loaded.fingerprint == index.fingerprint
    for a, b in zip(index.search(queries, k=10), loaded.search(queries, k=10), strict=True):
        np.testing.assert_array_equal(a, b)
    header = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert header["count"] == 795 and header["kind"] == kind
    loaded.add(vecs[:5], ids[:5])  # a loaded index stays writable
    assert len(loaded) == 800


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_corruption_raises_store_error(kind: str, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    VectorIndex.build(unit(200), np.arange(200), kind=kind, m=8).save(folder)
    header_path = folder / "index.json"
    header = json.loads(header_path.read_text())
    data_path = folder / header["data_file"]

    with pytest.raises(StoreError, match="expected 64"):
        VectorIndex.load(folder, expected_dim=64)

    blob = bytearray(data_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data_path.write_bytes(bytes(blob))
    with pytest.raises(StoreError, match=rf"{data_path.name}: checksum"):
        VectorIndex.load(folder)
    data_path.write_bytes(bytes(blob[:-100]))
    with pytest.raises(StoreError, match=rf"{data_path.name}: size"):
        VectorIndex.load(folder)
    data_path.unlink()
    with pytest.raises(StoreError, match="missing"):
        VectorIndex.load(folder)

    header_path.write_text(header_path.read_text()[:40])
    with pytest.raises(StoreError, match="index.json: unreadable"):
        VectorIndex.load(folder)
    header_path.write_text(json.dumps({**header, "format": "other"}))
    with pytest.raises(StoreError, match="index.json: not a"):
        VectorIndex.load(folder)
    with pytest.raises(StoreError, match="no vector index"):
        VectorIndex.load(tmp_path / "nowhere")


def test_header_dim_mismatch_with_data(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    VectorIndex.build(unit(50), np.arange(50)).save(folder)
    header_path = folder / "index.json"
    header = json.loads(header_path.read_text())
    header_path.write_text(json.dumps({**header, "dim": 16}))
    with pytest.raises(StoreError, match=r"vectors-.*\.npy: expected float32 vectors of shape"):
        VectorIndex.load(folder)
