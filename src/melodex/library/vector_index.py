"""In-memory vector index that sits beside the library's LanceDB table.

LanceDB holds the rows; searching it without an index is far too slow for interactive use (about
1.6 s per query at 1M rows, see FINDINGS), so search runs against this index, rebuilt from the
stored vectors. Two kinds, chosen automatically and reported in ``VectorIndex.kind``:

* ``"exact"``: one contiguous float32 matrix; ``queries @ M.T`` then ``np.argpartition``. Exact and
  cheap to update. A single query costs one pass over the matrix (memory bound: about 5-12 ms at
  100k x 384 on 2 cores), so it is the default up to ``ann_threshold`` vectors.
  Storage stays float32: numpy has no float16 BLAS (a float16 matvec took 139 ms at 100k x 384,
  12x slower) and torch's float16/bfloat16 matvec was no faster than float32 (7-16 ms), so halving
  the memory would not buy speed. Note: one text query at 100k = MiniLM encode (~9 ms) + exact
  (~6-15 ms), above a 10 ms target; HNSW at 100k meets it (see bench/bench_search.py), so lower
  ``ann_threshold`` (~20k) if that target matters more than exactness and build time.
* ``"hnsw"``: an hnswlib graph (inner-product space) for larger collections; approximate,
  recall tuned by ``ef_search``.

Vectors are L2-normalised float32 and the score is the inner product (cosine similarity). Ids are
arbitrary int64 (the store's track ids), not row numbers.

Filtering (``allowed``): the exact kind scores only the allowed rows (gathered when they are few,
masked when they are many). The HNSW kind scores the allowed vectors exactly when there are at most
``EXACT_FILTER_LIMIT`` of them (a filtered graph walk wastes most of its steps on rejected nodes
when the filter is selective, and exact is both exact and fast at that size); above it, hnswlib's
filter callback is used, with an exact fallback if the walk cannot return k results.

Not thread-safe for writes: guard ``add``/``remove`` with the store's lock; concurrent
``search`` calls are fine. The kind is fixed at build; ``needs_rebuild`` says when an auto-chosen
kind no longer fits the count.

On disk an index is a folder: ``index.json`` (kind, dim, count, params, an ids fingerprint, and
the size and CRC-32 of every data file) plus data files whose names carry a generation token. The
header is written last with ``os.replace``, so it is the commit point: a crash mid-save leaves the
previous index readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import zlib
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from melodex.errors import ParameterError, StoreError
from melodex.library.id_arrays import in_sorted, sorted_unique

__all__ = ["VectorIndex", "ids_fingerprint", "EXACT_FILTER_LIMIT"]

HEADER_NAME = "index.json"
FORMAT_NAME = "melodex-vector-index"
FORMAT_VERSION = 1
KINDS = ("exact", "hnsw")
# At or below this many allowed ids, a filtered HNSW search scores the subset exactly instead.
EXACT_FILTER_LIMIT = 20_000
# Stored vectors must have unit norm within this tolerance: scores are cosines only then.
NORM_TOLERANCE = 1e-3
# Single-query exact search below this many matrix elements (~20k x 384) avoids BLAS threads.
SINGLE_THREAD_ELEMENTS = 16_000_000  # covers every exact library search (12.8M, search_index)
_EMPTY_SCORES = np.zeros((0, 0), dtype=np.float32)


def ids_fingerprint(ids: np.ndarray) -> str:
    """SHA-256 of the sorted ids, so a store can tell whether an index matches its rows."""
    sorted_ids = np.sort(np.asarray(ids, dtype=np.int64).ravel())
    return hashlib.sha256(sorted_ids.astype("<i8").tobytes()).hexdigest()


def _as_vectors(vectors: Any, dim: int | None, *, what: str = "vectors") -> np.ndarray:
    """Return a C-contiguous (N, D) float32 copy-if-needed, or raise naming the problem."""
    arr = np.asarray(vectors)
    if arr.dtype.kind not in "fiu":
        raise ParameterError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ParameterError(f"{what} must have shape (N, D) or (D,), got {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ParameterError(f"{what} have dimension {arr.shape[1]}, the index has {dim}")
    if arr.shape[1] == 0:
        raise ParameterError(f"{what} have dimension 0")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ParameterError(f"{what} contain NaN or infinite values (row {bad})")
    return arr


def _check_normalised(vectors: np.ndarray) -> None:
    """Reject stored vectors that are not unit length: their scores would not be cosines."""
    if not len(vectors):
        return
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if len(bad):
        raise ParameterError(
            f"vectors must be L2-normalised: row {int(bad[0])} has norm {float(norms[bad[0]]):.4g}"
        )


def _as_ids(
    ids: Any, count: int | None = None, *, what: str = "ids", unique: bool = False
) -> np.ndarray:
    """Return a 1-D int64 array of distinct ids, or raise naming the problem; ``unique``: the
    caller made them distinct (np.unique), so the check is skipped."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1:
        raise ParameterError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ParameterError(f"{what} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ParameterError(f"{what} do not fit in int64")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if count is not None and len(arr) != count:
        raise ParameterError(f"got {count} vectors but {len(arr)} {what}")
    if not unique and len(np.unique(arr)) != len(arr):
        raise ParameterError(f"{what} contain duplicates")
    return arr


def _top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k of each row of ``scores`` (Q, C) as (scores, ids), descending, ties by id."""
    n_cand = scores.shape[1]
    if k < n_cand:
        cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        cols = np.broadcast_to(np.arange(n_cand), scores.shape)
    top_scores = np.take_along_axis(scores, cols, axis=1)
    top_ids = ids[cols]
    order = np.lexsort((top_ids, -top_scores), axis=-1)
    return (
        np.ascontiguousarray(np.take_along_axis(top_scores, order, axis=1), dtype=np.float32),
        np.ascontiguousarray(np.take_along_axis(top_ids, order, axis=1), dtype=np.int64),
    )


def _scores(q: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``q @ matrix.T``; one query against a small matrix stays on one thread (einsum): handing
    a sub-millisecond matvec to OpenBLAS's threads cost ~8 ms p50 on a busy 2-core machine, and
    their spinning afterwards slowed the text encoder of the same query (bench_search.py)."""
    if len(q) == 1 and matrix.size <= SINGLE_THREAD_ELEMENTS:
        return np.einsum("ij,j->i", matrix, q[0])[None, :]
    return q @ matrix.T


def _empty(n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n_queries, 0), dtype=np.float32), np.zeros((n_queries, 0), dtype=np.int64)


def _file_crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _fsync(path: Path) -> None:
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


class VectorIndex:
    """Top-k inner-product search over L2-normalised vectors keyed by int64 ids.

    Build with :meth:`build`; do not call the constructor directly.
    """

    kind: str
    dim: int

    def __init__(self, kind: str, dim: int, params: dict[str, Any]) -> None:
        if kind not in KINDS:
            raise ParameterError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.dim = int(dim)
        self.params = dict(params)
        # exact: rows [0, _n) of _vectors/_row_ids are live; capacity grows by doubling.
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._row_ids = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # (sorted ids, their rows)
        # hnsw: the graph, and the sorted live ids (hnswlib keeps deleted labels around).
        self._hnsw: hnswlib.Index | None = None
        self._live = np.zeros(0, dtype=np.int64)
        # the last filter: (key of the allowed ids, the live ones, their set); see _live_filter
        self._filter_memo: tuple[tuple[int, bytes], np.ndarray, set[int] | None] | None = None
        # The newest store write (indexed_at) this index reflects, and how many changes the
        # saved copy lacks; kept by search_index.
        self.synced_at: float | None = None
        self.unsaved_changes = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray,
        *,
        kind: str = "auto",
        ann_threshold: int = 100_000,
        ef_search: int = 128,
        m: int = 32,
        ef_construction: int = 200,
        num_threads: int | None = None,
    ) -> VectorIndex:
        """Build an index; ``kind="auto"`` is exact up to ``ann_threshold`` vectors, HNSW above.

        The kind is fixed once built (see :attr:`needs_rebuild`); ``num_threads=None`` lets
        hnswlib use every core.
        """
        vecs = _as_vectors(vectors, None)
        id_arr = _as_ids(ids, len(vecs))
        _check_normalised(vecs)
        if kind == "auto":
            chosen = "hnsw" if len(vecs) > ann_threshold else "exact"
        elif kind in KINDS:
            chosen = kind
        else:
            raise ParameterError(f"kind must be 'auto', 'exact' or 'hnsw', got {kind!r}")
        for name, value in (
            ("ef_search", ef_search),
            ("m", m),
            ("ef_construction", ef_construction),
        ):
            if value < 1:
                raise ParameterError(f"{name} must be positive, got {value}")
        params = {
            "requested_kind": kind,
            "ann_threshold": int(ann_threshold),
            "ef_search": int(ef_search),
            "m": int(m),
            "ef_construction": int(ef_construction),
            "num_threads": num_threads,
        }
        index = cls(chosen, vecs.shape[1], params)
        if chosen == "hnsw":
            index._init_hnsw(max(len(vecs), 16))
        index.add(vecs, id_arr)
        return index

    def _init_hnsw(self, capacity: int) -> None:
        graph = hnswlib.Index(space="ip", dim=self.dim)
        graph.init_index(
            max_elements=capacity,
            M=self.params["m"],
            ef_construction=self.params["ef_construction"],
            random_seed=100,
        )
        graph.set_ef(self.params["ef_search"])
        self._hnsw = graph

    @property
    def _threads(self) -> int:
        threads = self.params.get("num_threads")
        return -1 if threads is None else int(threads)

    # ------------------------------------------------------------------ introspection
    def __len__(self) -> int:
        return self._n if self.kind == "exact" else len(self._live)

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, dim={self.dim}, count={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        """Live ids (a copy; sorted for hnsw, row order for exact)."""
        return self._row_ids[: self._n].copy() if self.kind == "exact" else self._live.copy()

    @property
    def fingerprint(self) -> str:
        """:func:`ids_fingerprint` of the live ids."""
        return ids_fingerprint(self.ids)

    @property
    def needs_rebuild(self) -> bool:
        """True when an auto-chosen kind no longer fits the count (it grew or shrank past the
        threshold); the owner rebuilds, since switching kinds silently would change latency."""
        if self.params.get("requested_kind") != "auto":
            return False
        wanted = "hnsw" if len(self) > self.params["ann_threshold"] else "exact"
        return wanted != self.kind

    @property
    def ef_search(self) -> int:
        """HNSW search breadth (recall vs speed); unused by the exact kind."""
        return int(self.params["ef_search"])

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if value < 1:
            raise ParameterError(f"ef_search must be positive, got {value}")
        self.params["ef_search"] = int(value)

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the index (allocated capacity, not just live rows)."""
        if self.kind == "exact":
            return int(self._vectors.nbytes + self._row_ids.nbytes)
        assert self._hnsw is not None
        cap = self._hnsw.get_max_elements()
        m = self.params["m"]
        # level 0: vector + 2M links + count + label; upper levels: ~1/ln(M) of nodes, M links.
        level0 = cap * (4 * self.dim + 4 * (2 * m + 1) + 8)
        upper = int(self._hnsw.get_current_count() / np.log(m)) * 4 * (m + 1)
        return int(level0 + upper + cap * 24 + self._live.nbytes)

    # ------------------------------------------------------------------ exact helpers
    def _rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the given ids in the exact matrix: (found mask over ids, rows of found)."""
        if self._lookup is None:
            live = self._row_ids[: self._n]
            order = np.argsort(live, kind="stable")
            self._lookup = (live[order], order)
        sorted_ids, rows = self._lookup
        pos = np.searchsorted(sorted_ids, ids)
        pos_clipped = np.minimum(pos, max(len(sorted_ids) - 1, 0))
        if not len(sorted_ids):
            return np.zeros(len(ids), dtype=bool), np.zeros(0, dtype=np.int64)
        found = (pos < len(sorted_ids)) & (sorted_ids[pos_clipped] == ids)
        return found, rows[pos_clipped[found]]

    def _reserve(self, needed: int) -> None:
        """Grow the exact matrix by amortised doubling, keeping it contiguous."""
        capacity = len(self._vectors)
        if needed <= capacity:
            return
        new_cap = max(needed, 2 * capacity, 1024)
        vectors = np.empty((new_cap, self.dim), dtype=np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        row_ids = np.empty(new_cap, dtype=np.int64)
        row_ids[: self._n] = self._row_ids[: self._n]
        self._vectors, self._row_ids = vectors, row_ids

    # ------------------------------------------------------------------ updates
    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Insert vectors; an id already present is replaced (upsert)."""
        vecs = _as_vectors(vectors, self.dim)
        id_arr = _as_ids(ids, len(vecs))
        _check_normalised(vecs)
        if not len(vecs):
            return
        if self.kind == "exact":
            found, rows = self._rows_of(id_arr)
            self._vectors[rows] = vecs[found]
            new = ~found
            n_new = int(new.sum())
            if n_new:
                self._reserve(self._n + n_new)
                self._vectors[self._n : self._n + n_new] = vecs[new]
                self._row_ids[self._n : self._n + n_new] = id_arr[new]
                self._n += n_new
                self._lookup = None
            return
        assert self._hnsw is not None
        new = np.sort(id_arr[~in_sorted(self._live, id_arr)])
        live = np.insert(self._live, np.searchsorted(self._live, new), new)
        # hnswlib keeps removed labels as tombstones; re-adding one revives it in place.
        needed = self._hnsw.get_current_count() + len(id_arr)
        if needed > self._hnsw.get_max_elements():
            self._hnsw.resize_index(max(needed, 2 * self._hnsw.get_max_elements()))
        self._hnsw.add_items(vecs, id_arr.view(np.uint64), num_threads=self._threads)
        self._live = live
        self._filter_memo = None

    def remove(self, ids: np.ndarray) -> None:
        """Remove ids; unknown ids are ignored (the store may already have forgotten them)."""
        id_arr = np.unique(_as_ids(np.unique(np.asarray(ids)), what="ids"))
        if not len(id_arr):
            return
        if self.kind == "exact":
            found, rows = self._rows_of(id_arr)
            if not len(rows):
                return
            new_n = self._n - len(rows)
            # Fill holes below new_n with the surviving rows from the tail: O(removed * D).
            holes = np.sort(rows[rows < new_n])
            tail = np.arange(new_n, self._n)
            movers = np.setdiff1d(tail, rows, assume_unique=True)
            self._vectors[holes] = self._vectors[movers]
            self._row_ids[holes] = self._row_ids[movers]
            self._n = new_n
            self._lookup = None
            return
        assert self._hnsw is not None
        present = id_arr[in_sorted(self._live, id_arr)]
        for label in present.view(np.uint64).tolist():
            self._hnsw.mark_deleted(label)
        keep = np.ones(len(self._live), dtype=bool)
        keep[np.searchsorted(self._live, present)] = False
        self._live = self._live[keep]
        self._filter_memo = None

    # ------------------------------------------------------------------ search
    def search(
        self, queries: np.ndarray, *, k: int = 10, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (scores (Q, k') float32, ids (Q, k') int64), best first.

        ``k' = min(k, number of candidates)``; ``allowed`` restricts the candidates to those ids
        (unknown ids are ignored). A 1-D query is treated as a batch of one.
        """
        q = _as_vectors(queries, self.dim, what="queries")
        if k < 1:
            raise ParameterError(f"k must be at least 1, got {k}")
        allowed_ids = (
            None
            if allowed is None
            else _as_ids(sorted_unique(allowed), what="allowed", unique=True)
        )
        if self.kind == "exact":
            return self._search_exact(q, k, allowed_ids)
        return self._search_hnsw(q, k, allowed_ids)

    def _search_exact(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        matrix = self._vectors[: self._n]
        ids = self._row_ids[: self._n]
        if allowed is None:
            if not self._n:
                return _empty(len(q))
            return _top_k(_scores(q, matrix), ids, min(k, self._n))
        _, rows = self._rows_of(allowed)
        if not len(rows):
            return _empty(len(q))
        if 4 * len(rows) < self._n:  # few: gather them and score only those
            return _top_k(_scores(q, matrix[rows]), ids[rows], min(k, len(rows)))
        scores = _scores(q, matrix)  # many: score all, mask the rest
        mask = np.ones(self._n, dtype=bool)
        mask[rows] = False
        scores[:, mask] = -np.inf
        return _top_k(scores, ids, min(k, len(rows)))

    def _exact_over(self, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Score the given live ids exactly, reading their vectors back from the graph."""
        assert self._hnsw is not None
        vecs = np.asarray(self._hnsw.get_items(ids.view(np.uint64)), dtype=np.float32)
        return _top_k(_scores(q, vecs), ids, min(k, len(ids)))

    def _search_hnsw(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self._hnsw is not None
        if allowed is not None:
            allowed = self._live_filter(allowed)
            if len(allowed) <= EXACT_FILTER_LIMIT:
                return self._exact_over(q, allowed, k) if len(allowed) else _empty(len(q))
            candidates = allowed
        else:
            candidates = self._live
        if not len(candidates):
            return _empty(len(q))
        k_eff = min(k, len(candidates))
        self._hnsw.set_ef(max(self.params["ef_search"], k_eff))
        try:
            if allowed is None:
                labels, dists = self._hnsw.knn_query(q, k=k_eff, num_threads=self._threads)
            else:
                # hnswlib calls a Python filter under the GIL: one thread is the fast path.
                allowed_set = self._filter_set(allowed)
                labels, dists = self._hnsw.knn_query(
                    q, k=k_eff, num_threads=1, filter=allowed_set.__contains__
                )
        except RuntimeError:
            # The walk found fewer than k results (tombstones, selective filter): be exact.
            return self._exact_over(q, candidates, k_eff)
        scores = (1.0 - dists).astype(np.float32)  # hnswlib "ip" distance is 1 - <q, x>
        found = labels.astype(np.uint64).view(np.int64)
        order = np.lexsort((found, -scores), axis=-1)
        return (
            np.ascontiguousarray(np.take_along_axis(scores, order, axis=1)),
            np.ascontiguousarray(np.take_along_axis(found, order, axis=1)),
        )

    def _live_filter(self, allowed: np.ndarray) -> np.ndarray:
        """The live ones of sorted ``allowed`` ids; the last filter's are kept (with their set,
        see :meth:`_filter_set`), since a user's searches repeat a filter: at 1M tracks a
        --bpm/--key filter passes 150k ids, and the binary search against the live ids plus
        the set cost ~15 ms a search, the key 1 ms."""
        if len(allowed) <= EXACT_FILTER_LIMIT:  # cheap, and not to evict a broad filter's
            return allowed[in_sorted(self._live, allowed)]
        key = (len(allowed), hashlib.blake2b(allowed.tobytes(), digest_size=16).digest())
        memo = self._filter_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        live = allowed[in_sorted(self._live, allowed)]
        self._filter_memo = (key, live, None)
        return live

    def _filter_set(self, live: np.ndarray) -> set[int]:
        """The set of the last filter's live ids, built once (for the graph walk only)."""
        memo = self._filter_memo
        if memo is not None and memo[1] is live and memo[2] is not None:
            return memo[2]
        as_set = set(live.view(np.uint64).tolist())
        if memo is not None and memo[1] is live:
            self._filter_memo = (memo[0], live, as_set)
        return as_set

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` atomically: data files first, the header last."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(6)
        ids_name = f"ids-{token}.npy"
        written: dict[str, Path] = {}
        try:
            ids_path = folder / ids_name
            np.save(ids_path, self.ids)
            written[ids_name] = ids_path
            if self.kind == "exact":
                data_name = f"vectors-{token}.npy"
                np.save(folder / data_name, self._vectors[: self._n])
            else:
                assert self._hnsw is not None
                data_name = f"hnsw-{token}.bin"
                self._hnsw.save_index(str(folder / data_name))
            written[data_name] = folder / data_name
            files = {}
            for name, path in written.items():
                _fsync(path)
                files[name] = {"bytes": path.stat().st_size, "crc32": _file_crc(path)}
            header = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "kind": self.kind,
                "dim": self.dim,
                "count": len(self),
                "params": self.params,
                "ids_fingerprint": self.fingerprint,
                "ids_file": ids_name,
                "data_file": data_name,
                "files": files,
            }
            tmp = folder / f".{HEADER_NAME}.{token}.tmp"
            tmp.write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
            _fsync(tmp)
            os.replace(tmp, folder / HEADER_NAME)
        except BaseException:
            for path in written.values():
                path.unlink(missing_ok=True)
            raise
        # The new header is committed: drop data files of earlier generations.
        for stale in folder.iterdir():
            if (
                stale.name not in written
                and stale.name != HEADER_NAME
                and (stale.name.startswith(("ids-", "vectors-", "hnsw-", f".{HEADER_NAME}.")))
            ):
                stale.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, *, expected_dim: int | None = None) -> VectorIndex:
        """Read an index saved by :meth:`save`; any damage raises StoreError naming the file."""
        folder = Path(folder)
        header_path = folder / HEADER_NAME
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{header_path}: no vector index here") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{header_path}: unreadable index header ({exc})") from exc
        try:
            if header["format"] != FORMAT_NAME or header["version"] != FORMAT_VERSION:
                raise StoreError(
                    f"{header_path}: not a {FORMAT_NAME} v{FORMAT_VERSION} header "
                    f"(format={header['format']!r}, version={header['version']!r})"
                )
            kind, dim, count = header["kind"], int(header["dim"]), int(header["count"])
            params, files = dict(header["params"]), header["files"]
            ids_name, data_name = header["ids_file"], header["data_file"]
            fingerprint = header["ids_fingerprint"]
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{header_path}: malformed index header ({exc!r})") from exc
        if kind not in KINDS:
            raise StoreError(f"{header_path}: unknown index kind {kind!r}")
        if expected_dim is not None and dim != expected_dim:
            raise StoreError(f"{header_path}: index has dimension {dim}, expected {expected_dim}")
        for name in (ids_name, data_name):
            path = folder / name
            meta = files.get(name) if isinstance(files, dict) else None
            if not path.is_file():
                raise StoreError(f"{path}: index data file is missing")
            if not meta or path.stat().st_size != meta.get("bytes"):
                raise StoreError(f"{path}: size does not match the index header (truncated?)")
            if _file_crc(path) != meta.get("crc32"):
                raise StoreError(f"{path}: checksum does not match the index header (corrupted)")
        ids_path = folder / ids_name
        try:
            ids = np.load(ids_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{ids_path}: unreadable ids ({exc})") from exc
        if ids.dtype != np.int64 or ids.shape != (count,):
            raise StoreError(f"{ids_path}: expected {count} int64 ids, got {ids.dtype} {ids.shape}")
        if ids_fingerprint(ids) != fingerprint:
            raise StoreError(f"{ids_path}: ids do not match the header's fingerprint")
        index = cls(kind, dim, params)
        data_path = folder / data_name
        if kind == "exact":
            try:
                vectors = np.load(data_path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise StoreError(f"{data_path}: unreadable vectors ({exc})") from exc
            if vectors.dtype != np.float32 or vectors.shape != (count, dim):
                raise StoreError(
                    f"{data_path}: expected float32 vectors of shape {(count, dim)}, "
                    f"got {vectors.dtype} {vectors.shape}"
                )
            index._vectors = np.ascontiguousarray(vectors)
            index._row_ids = ids
            index._n = count
            return index
        graph = hnswlib.Index(space="ip", dim=dim)
        try:
            graph.load_index(str(data_path), max_elements=0)
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise StoreError(f"{data_path}: unreadable HNSW graph ({exc})") from exc
        if graph.dim != dim:
            raise StoreError(f"{data_path}: graph has dimension {graph.dim}, header says {dim}")
        graph.set_ef(int(params.get("ef_search", 128)))
        index._hnsw = graph
        index._live = np.sort(ids)
        return index
