"""The ranking core: where each relevant item lands, under a chosen tie rule.

Every rank-based metric (R@k, median rank, MRR, AP, nDCG, P@k) is a function of the ranks of the
relevant items, so they are computed once, as flat arrays over the relevant (query, item) pairs,
without materialising a sorted (Q, N) matrix when there are few relevant items per query.

Tie rules (`melodex.evaluate.metrics.conventions`): ``pessimistic`` places a relevant item after
every non-relevant item with the same score (and, among tied relevant items, lower gains first);
``optimistic`` before them (higher gains first); ``index`` by gallery position, as a stable sort.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from melodex.evaluate.metrics.conventions import Ties
from melodex.evaluate.metrics.validation import (
    EmptyPolicy,
    MetricInputError,
    validate_scores,
)

__all__ = ["Ranking", "first_rank", "rank_relevant", "ranking", "ranks_of_relevant"]

# above this many relevant items per query on average, sorting beats counting
_COUNT_PATH_MAX_MEAN_RELEVANT = 16
CHUNK_ELEMENTS = 1 << 22


class Ranking(NamedTuple):
    """Relevant (query, item) pairs in rank order, as flat arrays.

    ``q`` query index, ``m`` 1-based position among the query's relevant items, ``rank`` the
    1-based rank among all N items, ``gain`` the relevance gain; ``n_rel`` relevant per query,
    ``start`` index of each query's first pair in the flat arrays.
    """

    q: np.ndarray
    m: np.ndarray
    rank: np.ndarray
    gain: np.ndarray
    n_rel: np.ndarray
    start: np.ndarray
    n_items: int


def rank_relevant(
    scores: np.ndarray, gains: np.ndarray, *, ties: Ties = "pessimistic", method: str = "auto"
) -> Ranking:
    """Ranks of the relevant items (gain > 0) of validated inputs under the tie rule ``ties``.

    Pessimistic: the m-th relevant item of a query, in order of (score descending, gain
    ascending), has rank ``m + #{non-relevant items with score >= its score}``. Optimistic: in
    order of (score descending, gain descending), ``m + #{non-relevant with score > it}``.
    Index: its position in a stable descending sort of the row.
    """
    Q, N = scores.shape
    relevant = gains > 0
    q, j = np.nonzero(relevant)
    s = scores[q, j]
    g = gains[q, j].astype(np.float64)
    if ties == "index":
        rank = _stable_ranks(scores, q, j)
        order = np.lexsort((rank, q))
        q, g, rank = q[order], g[order], rank[order]
        n_rel, start, m = _positions(q, Q)
        return Ranking(q, m, rank, g, n_rel, start, N)
    if ties not in ("pessimistic", "optimistic"):
        raise MetricInputError(f"ties must be pessimistic, optimistic or index, got {ties!r}")
    strict = ties == "optimistic"  # count non-relevant items strictly above, not >=
    order = np.lexsort((g if not strict else -g, -s, q))
    q, s, g = q[order], s[order], g[order]
    n_rel, start, m = _positions(q, Q)
    if method == "auto":
        method = "count" if q.size <= _COUNT_PATH_MAX_MEAN_RELEVANT * Q else "sort"
    if method == "count":
        nonrel = _count_above(scores, q, s, strict=strict) - _relevant_above(q, s, m, strict)
    elif method == "sort":
        nonrel = _nonrelevant_above_sorted(scores, relevant, q, s, strict=strict)
    else:  # pragma: no cover - private switch
        raise MetricInputError(f"unknown ranking method {method!r}")
    return Ranking(q, m, m + nonrel, g, n_rel, start, N)


def _positions(q: np.ndarray, n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_rel = np.bincount(q, minlength=n_queries)
    start = np.concatenate(([0], np.cumsum(n_rel)[:-1])).astype(np.int64)
    m = np.arange(q.size) - start[q] + 1
    return n_rel, start, m


def _stable_ranks(scores: np.ndarray, q: np.ndarray, j: np.ndarray) -> np.ndarray:
    """1-based position of item ``j`` of row ``q`` in a stable descending sort of the row
    (``q`` sorted ascending, as ``np.nonzero`` gives it)."""
    N = scores.shape[1]
    out = np.empty(q.size, dtype=np.int64)
    rows = np.unique(q)
    bounds = np.searchsorted(q, np.append(rows, rows[-1] + 1) if rows.size else rows)
    step = max(1, CHUNK_ELEMENTS // N)
    for a in range(0, rows.size, step):
        block = rows[a : a + step]
        order = np.argsort(-scores[block], axis=1, kind="stable")
        position = np.empty_like(order)
        np.put_along_axis(position, order, np.arange(1, N + 1)[None, :], axis=1)
        for r in range(block.size):
            lo, hi = bounds[a + r], bounds[a + r + 1]
            out[lo:hi] = position[r, j[lo:hi]]
    return out


def _count_above(scores: np.ndarray, q: np.ndarray, t: np.ndarray, *, strict: bool) -> np.ndarray:
    """``#{n: scores[q_i, n] >= t_i}`` (``>`` when strict) for each pair, in row chunks."""
    out = np.empty(q.size, dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // scores.shape[1])
    for a in range(0, q.size, step):
        rows = scores[q[a : a + step]]
        t_block = t[a : a + step, None]
        hits = rows > t_block if strict else rows >= t_block
        out[a : a + step] = np.count_nonzero(hits, axis=1)
    return out


def _relevant_above(q: np.ndarray, s: np.ndarray, m: np.ndarray, strict: bool) -> np.ndarray:
    """Relevant items of the same query scoring >= (> when strict) each relevant item; the
    pairs are sorted by query, then score descending."""
    if q.size == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(q.size)
    if strict:  # first index of each tie run: items before it score strictly higher
        is_start = np.ones(q.size, dtype=bool)
        is_start[1:] = (q[1:] != q[:-1]) | (s[1:] != s[:-1])
        first = np.maximum.accumulate(np.where(is_start, idx, 0))
        return m[first] - 1
    is_end = np.ones(q.size, dtype=bool)
    is_end[:-1] = (q[1:] != q[:-1]) | (s[1:] != s[:-1])
    end = np.minimum.accumulate(np.where(is_end, idx, q.size)[::-1])[::-1]
    return m[end]


def _nonrelevant_above_sorted(
    scores: np.ndarray, relevant: np.ndarray, q: np.ndarray, t: np.ndarray, *, strict: bool
) -> np.ndarray:
    """Same as counting, by sorting each row's non-relevant scores and binary search."""
    N = scores.shape[1]
    a = np.where(relevant, -np.inf, scores)  # relevant entries sort first and are never >= t
    a.sort(axis=1)
    lo = np.zeros(q.size, dtype=np.int64)
    hi = np.full(q.size, N, dtype=np.int64)
    for _ in range(int(N).bit_length() + 1):  # vectorised searchsorted(a[q], t, side)
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        value = a[q, np.minimum(mid, N - 1)]
        right = active & ((value <= t) if strict else (value < t))
        left = active & ~right
        lo = np.where(right, mid + 1, lo)
        hi = np.where(left, mid, hi)
    return N - lo


def first_rank(r: Ranking) -> np.ndarray:
    """1-based rank of each query's best-ranked relevant item; NaN for queries without one."""
    out = np.full(r.n_rel.size, np.nan)
    has = r.n_rel > 0
    out[has] = r.rank[r.start[has]]
    return out


def ranking(
    scores: ArrayLike,
    relevance: ArrayLike,
    empty_queries: EmptyPolicy,
    *,
    graded: bool = False,
    ties: Ties = "pessimistic",
) -> Ranking:
    """Validate, then rank; raises when no query has a relevant item."""
    s, r = validate_scores(scores, relevance, graded=graded, empty_queries=empty_queries)
    if not (r > 0).any():
        raise MetricInputError("no query has a relevant item; nothing to evaluate")
    return rank_relevant(s, r, ties=ties)


def ranks_of_relevant(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    empty_queries: EmptyPolicy = "raise",
    ties: Ties = "pessimistic",
) -> np.ndarray:
    """1-based ranks of each query's relevant items.

    Returns
    -------
    ranks : int array (Q, R_max)
        Row q holds the ranks of query q's relevant items in ascending order, padded with 0
        (R_max is the largest number of relevant items of any query). For one relevant item per
        query, ``ranks[:, 0]`` is the rank of the ground truth.

    Ties (default pessimistic): a relevant item is ranked after every non-relevant item with the
    same score; tied relevant items take consecutive ranks. A constant scorer thus puts a single
    relevant item at rank N.

    >>> ranks_of_relevant([[0.9, 0.5, 0.5]], [[0, 0, 1]]).tolist()
    [[3]]
    """
    r = ranking(scores, relevance, empty_queries, ties=ties)
    out = np.zeros((r.n_rel.size, int(r.n_rel.max())), dtype=np.int64)
    out[r.q, r.m - 1] = r.rank
    return out
