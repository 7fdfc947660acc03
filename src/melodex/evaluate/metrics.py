"""Retrieval, tagging and classification metrics as pure, validated functions.

The shape follows mir_eval: one validating step (:func:`validate_scores`), the single metrics,
and an ``evaluate_*`` function that returns an ordered ``dict`` of named scores. Every function
accepts NumPy arrays or torch tensors, never mutates its input, and is deterministic.

Conventions (the contract; tests pin each of them)
--------------------------------------------------
Layout
    Retrieval metrics take ``scores`` of shape ``(Q, N)`` (query ``q`` against item ``n``; higher
    means more relevant) and ``relevance`` of the same shape (bool or 0/1; graded non-negative
    gains only for :func:`ndcg_at_k`). Tagging AUCs take ``(items, tags)``.
Ranks are 1-based
    The best-scored item has rank 1, so a perfect ranking has median rank 1 (not 0).
Ties are pessimistic (rank-based metrics)
    Among items with equal scores, the less relevant ones are ranked first: a relevant item tied
    with non-relevant ones is placed *after* all of them. The ranking is the worst one consistent
    with the scores, so a model cannot gain from ties: a constant scorer gets rank N, not rank 1,
    and the result never depends on the order of the items in the array (``argsort`` tie-breaking
    by index silently favours whatever index the ground truth happens to have, which on a square
    paired matrix is often the diagonal). The numbers are a lower bound; with continuous scores
    ties do not occur and every convention agrees.
Ties count half (pairwise metrics)
    :func:`roc_auc` and :func:`triplet_accuracy` are probabilities over pairs; a tied pair counts
    1/2, as in ``sklearn.metrics.roc_auc_score``. :func:`pr_auc` is sklearn's
    ``average_precision_score`` (tied scores form one threshold).
Queries without relevant items
    Raise by default. With ``empty_queries="exclude"`` they are left out of every mean (their
    per-query value is NaN) and :func:`evaluate_retrieval` reports how many were excluded.
Values are fractions in [0, 1]; papers usually print percentages (R@10 = 39.2 means 0.392).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from melodex.errors import MelodexError, ParameterError

EmptyPolicy = Literal["raise", "exclude"]
Average = Literal["macro", "per_sample"]

__all__ = [
    "MetricInputError",
    "average_precision_at_k",
    "bootstrap_ci",
    "evaluate_retrieval",
    "evaluate_tagging",
    "map_at_k",
    "mean_rank",
    "median_rank",
    "mrr",
    "ndcg_at_k",
    "pr_auc",
    "ranks_of_relevant",
    "recall_at_k",
    "recall_at_k_fraction",
    "roc_auc",
    "top_k_accuracy",
    "triplet_accuracy",
    "validate_scores",
]


class MetricInputError(MelodexError, ValueError):
    """Scores, relevance or an option given to a metric is malformed; the message says how."""


# --------------------------------------------------------------------------- validation


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert an array-like or a torch tensor (any device, any float dtype) to NumPy."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        try:
            x = x.numpy()
        except TypeError:  # bfloat16 and friends have no NumPy dtype
            x = x.float().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise MetricInputError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise MetricInputError(f"{name} must be real, got dtype {arr.dtype}")
    return arr


def _scores_2d(scores: Any, name: str = "scores") -> np.ndarray:
    s = _to_numpy(scores, name)
    if s.ndim != 2:
        raise MetricInputError(f"{name} must be 2-D (queries, items), got shape {s.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise MetricInputError(f"{name} is empty, shape {s.shape}")
    if s.dtype == np.bool_:
        raise MetricInputError(
            f"{name} is boolean; scores must be real-valued (were scores and relevance swapped?)"
        )
    s = s.astype(np.float64, copy=False)
    bad = ~np.isfinite(s)
    if bad.any():
        q, n = np.argwhere(bad)[0]
        raise MetricInputError(
            f"{name} must be finite: {int(bad.sum())} NaN/inf value(s), first at [{q}, {n}]"
        )
    return s


def _binary(relevance: np.ndarray, name: str) -> np.ndarray:
    if relevance.dtype == np.bool_:
        return relevance
    ok = (relevance == 0) | (relevance == 1)
    if not ok.all():
        bad = relevance[~ok].ravel()[0].item()
        raise MetricInputError(
            f"{name} must be boolean or 0/1, found value {bad!r} "
            "(graded gains are accepted by ndcg_at_k only; binarise with relevance > 0)"
        )
    return relevance.astype(bool)


def validate_scores(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    graded: bool = False,
    empty_queries: EmptyPolicy = "raise",
) -> tuple[np.ndarray, np.ndarray]:
    """Check a retrieval problem and return it as ``(scores float64, relevance)``.

    Parameters
    ----------
    scores : array (Q, N)
        Finite real scores, higher = more relevant. Torch tensors are converted.
    relevance : array (Q, N)
        Bool or 0/1; with ``graded=True`` finite non-negative gains (returned as float64,
        otherwise returned as bool).
    graded : bool
        Accept graded gains (nDCG).
    empty_queries : {"raise", "exclude"}
        What to do with queries that have no relevant item: raise, or keep them so the metrics
        report NaN for them and leave them out of means.

    Raises
    ------
    MetricInputError (a ValueError)
        Naming the problem: shape, dtype, non-finite value, non-binary or negative relevance,
        queries without relevant items.
    """
    if empty_queries not in ("raise", "exclude"):
        raise MetricInputError(f"empty_queries must be 'raise' or 'exclude', got {empty_queries!r}")
    s = _scores_2d(scores)
    r = _to_numpy(relevance, "relevance")
    if r.shape != s.shape:
        raise MetricInputError(f"relevance shape {r.shape} does not match scores shape {s.shape}")
    if graded:
        r = r.astype(np.float64, copy=False)
        if not np.isfinite(r).all():
            raise MetricInputError("relevance must be finite")
        if (r < 0).any():
            raise MetricInputError(
                f"relevance gains must be >= 0, found {r[r < 0].ravel()[0].item()!r}"
            )
        has_relevant = (r > 0).any(axis=1)
    else:
        r = _binary(r, "relevance")
        has_relevant = r.any(axis=1)
    if empty_queries == "raise" and not has_relevant.all():
        empty = np.flatnonzero(~has_relevant)
        raise MetricInputError(
            f"{empty.size} of {s.shape[0]} queries have no relevant item "
            f"(first: {empty[:5].tolist()}); pass empty_queries='exclude' to leave them out"
        )
    return s, r


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise MetricInputError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)


# --------------------------------------------------------------------------- ranking core


class _Ranking(NamedTuple):
    """Relevant (query, item) pairs in pessimistic rank order, as flat arrays.

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


# above this many relevant items per query on average, sorting beats counting
_COUNT_PATH_MAX_MEAN_RELEVANT = 16
_CHUNK_ELEMENTS = 1 << 22


def _rank(scores: np.ndarray, gains: np.ndarray, *, method: str = "auto") -> _Ranking:
    """Pessimistic ranks of the relevant items (gain > 0) of validated inputs.

    The m-th relevant item of a query, in order of (score descending, gain ascending), has rank
    ``m + #{non-relevant items with score >= its score}``: every non-relevant item tied with it
    is placed before it, and so is every relevant item tied with it but of lower gain.
    """
    Q, N = scores.shape
    relevant = gains > 0
    q, j = np.nonzero(relevant)
    s = scores[q, j]
    g = gains[q, j].astype(np.float64)
    order = np.lexsort((g, -s, q))  # by query, score descending, then gain ascending
    q, s, g = q[order], s[order], g[order]
    n_rel = np.bincount(q, minlength=Q)
    start = np.concatenate(([0], np.cumsum(n_rel)[:-1]))
    m = np.arange(q.size) - start[q] + 1

    if method == "auto":
        method = "count" if q.size <= _COUNT_PATH_MAX_MEAN_RELEVANT * Q else "sort"
    if method == "count":
        nonrel_ge = _count_ge(scores, q, s) - _relevant_ge(q, s, m)
    elif method == "sort":
        nonrel_ge = _nonrelevant_ge_sorted(scores, relevant, q, s)
    else:  # pragma: no cover - private switch
        raise ParameterError(method)
    return _Ranking(q, m, m + nonrel_ge, g, n_rel, start, N)


def _count_ge(scores: np.ndarray, q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``#{n: scores[q_i, n] >= t_i}`` for each pair, by comparison, in row chunks."""
    out = np.empty(q.size, dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // scores.shape[1])
    for a in range(0, q.size, step):
        rows = scores[q[a : a + step]]
        out[a : a + step] = np.count_nonzero(rows >= t[a : a + step, None], axis=1)
    return out


def _relevant_ge(q: np.ndarray, s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Relevant items of the same query scoring >= each relevant item (flat, sorted input)."""
    if q.size == 0:
        return np.zeros(0, dtype=np.int64)
    is_end = np.ones(q.size, dtype=bool)
    is_end[:-1] = (q[1:] != q[:-1]) | (s[1:] != s[:-1])
    end = np.where(is_end, np.arange(q.size), q.size)
    end = np.minimum.accumulate(end[::-1])[::-1]  # last index of each tie run
    return m[end]


def _nonrelevant_ge_sorted(
    scores: np.ndarray, relevant: np.ndarray, q: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Same as counting, by sorting each row's non-relevant scores and binary search."""
    N = scores.shape[1]
    a = np.where(relevant, -np.inf, scores)  # relevant entries sort first and are never >= t
    a.sort(axis=1)
    lo = np.zeros(q.size, dtype=np.int64)
    hi = np.full(q.size, N, dtype=np.int64)
    for _ in range(int(N).bit_length() + 1):  # vectorised searchsorted(a[q], t, "left")
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        right = active & (a[q, np.minimum(mid, N - 1)] < t)
        left = active & ~right
        lo = np.where(right, mid + 1, lo)
        hi = np.where(left, mid, hi)
    return N - lo


def _first_rank(r: _Ranking) -> np.ndarray:
    """1-based rank of each query's best-ranked relevant item; NaN for queries without one."""
    out = np.full(r.n_rel.size, np.nan)
    has = r.n_rel > 0
    out[has] = r.rank[r.start[has]]
    return out


def _per_query_sum(r: _Ranking, weights: np.ndarray) -> np.ndarray:
    return np.bincount(r.q, weights=weights, minlength=r.n_rel.size)


def _nan_where_empty(r: _Ranking, values: np.ndarray) -> np.ndarray:
    return np.where(r.n_rel > 0, values, np.nan)


def _reduce(values: np.ndarray, per_query: bool) -> np.ndarray | float:
    if per_query:
        return values
    return float(np.nanmean(values))  # NaN only marks excluded queries; validation forbids all


def _ranking(
    scores: ArrayLike,
    relevance: ArrayLike,
    empty_queries: EmptyPolicy,
    graded: bool = False,
) -> _Ranking:
    s, r = validate_scores(scores, relevance, graded=graded, empty_queries=empty_queries)
    if not (r > 0).any():
        raise MetricInputError("no query has a relevant item; nothing to evaluate")
    return _rank(s, r)


def ranks_of_relevant(
    scores: ArrayLike, relevance: ArrayLike, *, empty_queries: EmptyPolicy = "raise"
) -> np.ndarray:
    """1-based pessimistic ranks of each query's relevant items.

    Returns
    -------
    ranks : int array (Q, R_max)
        Row q holds the ranks of query q's relevant items in ascending order, padded with 0
        (R_max is the largest number of relevant items of any query). For one relevant item per
        query, ``ranks[:, 0]`` is the rank of the ground truth.

    Ties: a relevant item is ranked after every non-relevant item with the same score; tied
    relevant items take consecutive ranks. A constant scorer thus puts a single relevant item at
    rank N.

    >>> ranks_of_relevant([[0.9, 0.5, 0.5]], [[0, 0, 1]]).tolist()
    [[3]]
    """
    r = _ranking(scores, relevance, empty_queries)
    out = np.zeros((r.n_rel.size, int(r.n_rel.max())), dtype=np.int64)
    out[r.q, r.m - 1] = r.rank
    return out


# --------------------------------------------------------------------------- retrieval metrics


def recall_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
) -> np.ndarray | float:
    """R@k as in TTMR, WikiMuTe and image-text retrieval: the fraction of queries with at least
    one relevant item in the top k (a "hit"). With one relevant item per query this is the usual
    1-of-N recall; with several it is *not* the fraction of relevant items retrieved (that is
    :func:`recall_at_k_fraction`). ``k > N`` behaves as ``k = N``.
    """
    k = _check_k(k)
    r = _ranking(scores, relevance, empty_queries)
    first = _first_rank(r)
    return _reduce(np.where(np.isnan(first), np.nan, first <= k), per_query)


def recall_at_k_fraction(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
) -> np.ndarray | float:
    """Fraction of each query's relevant items ranked in the top k, averaged over queries
    (information-retrieval recall, for multi-relevant tasks such as tag-to-music retrieval).
    """
    k = _check_k(k)
    r = _ranking(scores, relevance, empty_queries)
    hits = _per_query_sum(r, (r.rank <= k).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return _reduce(_nan_where_empty(r, hits / r.n_rel), per_query)


def median_rank(
    scores: ArrayLike, relevance: ArrayLike, *, empty_queries: EmptyPolicy = "raise"
) -> float:
    """Median over queries of the 1-based rank of the first relevant item (perfect = 1.0).

    With an even number of queries this is the mean of the two middle ranks (``np.median``), so
    it can end in .5. Lower is better.
    """
    first = _first_rank(_ranking(scores, relevance, empty_queries))
    return float(np.median(first[~np.isnan(first)]))


def mean_rank(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
) -> np.ndarray | float:
    """Mean over queries of the 1-based rank of the first relevant item (perfect = 1.0).

    ``per_query=True`` returns the ranks themselves (float, NaN for excluded queries).
    """
    return _reduce(_first_rank(_ranking(scores, relevance, empty_queries)), per_query)


def mrr(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
) -> np.ndarray | float:
    """Mean reciprocal rank of the first relevant item (untruncated)."""
    return _reduce(1.0 / _first_rank(_ranking(scores, relevance, empty_queries)), per_query)


def average_precision_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int | None = None,
    *,
    empty_queries: EmptyPolicy = "raise",
) -> np.ndarray:
    """Per-query AP@k: ``sum_{i<=k} P@i * rel_i / min(k, R)``, R = number of relevant items.

    Normalising by ``min(k, R)`` (not by R, not by the hits in the top k) makes 1.0 reachable
    whenever every top slot that could hold a relevant item does, and rewards nothing for an
    empty top k. ``k=None`` gives untruncated AP (normalised by R). Returns shape (Q,), NaN for
    excluded queries.
    """
    r = _ranking(scores, relevance, empty_queries)
    k = r.n_items if k is None else _check_k(k)
    precision_at_hits = np.where(r.rank <= k, r.m / r.rank, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = _per_query_sum(r, precision_at_hits) / np.minimum(k, r.n_rel)
    return _nan_where_empty(r, ap)


def map_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int | None = 10,
    *,
    empty_queries: EmptyPolicy = "raise",
) -> float:
    """Mean over queries of :func:`average_precision_at_k` (mAP@10 by default)."""
    ap = average_precision_at_k(scores, relevance, k, empty_queries=empty_queries)
    return float(np.nanmean(ap))


def _ndcg_values(r: _Ranking, k: int) -> np.ndarray:
    dcg = _per_query_sum(r, np.where(r.rank <= k, r.gain / np.log2(r.rank + 1.0), 0.0))
    # ideal DCG: each query's gains sorted descending at ranks 1, 2, ...
    order = np.lexsort((-r.gain, r.q))
    pos = np.arange(r.q.size) - r.start[r.q[order]] + 1
    g = r.gain[order]
    idcg = np.bincount(
        r.q[order],
        weights=np.where(pos <= k, g / np.log2(pos + 1.0), 0.0),
        minlength=r.n_rel.size,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_where_empty(r, dcg / idcg)


def ndcg_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
) -> np.ndarray | float:
    """nDCG@k with linear gains and a log2 discount: ``DCG@k = sum_{i<=k} gain_i / log2(i+1)``
    divided by the DCG@k of the relevance sorted by gain (the ideal ranking).

    ``relevance`` may be binary or graded (non-negative; the gain is the value itself, as in
    ``sklearn.metrics.ndcg_score``; pass ``2**rel - 1`` for exponential gains). Ties are
    pessimistic: within equal scores, lower gains come first.
    """
    k = _check_k(k)
    r = _ranking(scores, relevance, empty_queries, graded=True)
    return _reduce(_ndcg_values(r, k), per_query)


# --------------------------------------------------------------------------- tagging (AUC)


def _sorted_runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each element's tie run, for rows already sorted."""
    G, n = x.shape
    idx = np.broadcast_to(np.arange(n), (G, n))
    change = x[:, 1:] != x[:, :-1]
    is_start = np.concatenate([np.ones((G, 1), bool), change], axis=1)
    is_end = np.concatenate([change, np.ones((G, 1), bool)], axis=1)
    first = np.maximum.accumulate(np.where(is_start, idx, 0), axis=1)
    last = np.minimum.accumulate(np.where(is_end, idx, n)[:, ::-1], axis=1)[:, ::-1]
    return first, last


def _rows_roc_auc(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mann-Whitney ROC-AUC of each row (ties count 1/2); NaN for one-class rows."""
    order = np.argsort(s, axis=1, kind="stable")
    xs, ys = np.take_along_axis(s, order, 1), np.take_along_axis(y, order, 1)
    first, last = _sorted_runs(xs)
    mid_rank = (first + last) / 2.0 + 1.0
    n_pos = ys.sum(axis=1, dtype=np.float64)
    n_neg = s.shape[1] - n_pos
    u = (mid_rank * ys).sum(axis=1) - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _rows_pr_auc(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sklearn's average precision of each row (tied scores = one threshold); NaN if one-class."""
    order = np.argsort(-s, axis=1, kind="stable")
    xs, ys = np.take_along_axis(s, order, 1), np.take_along_axis(y, order, 1)
    _, last = _sorted_runs(xs)
    tp = np.cumsum(ys, axis=1, dtype=np.float64)
    precision_at_threshold = np.take_along_axis(tp, last, 1) / (last + 1.0)
    n_pos = ys.sum(axis=1, dtype=np.float64)
    n_neg = s.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (precision_at_threshold * ys).sum(axis=1) / n_pos
    return np.where((n_pos > 0) & (n_neg > 0), ap, np.nan)


def _tagging(scores: ArrayLike, relevance: ArrayLike, average: str) -> tuple[np.ndarray, ...]:
    if average not in ("macro", "per_sample"):
        raise MetricInputError(f"average must be 'macro' or 'per_sample', got {average!r}")
    s = _scores_2d(scores)
    y = _to_numpy(relevance, "relevance")
    if y.shape != s.shape:
        raise MetricInputError(f"relevance shape {y.shape} does not match scores shape {s.shape}")
    y = _binary(y, "relevance")
    return (s.T, y.T) if average == "macro" else (s, y)


def _average(values: np.ndarray, per_group: bool, what: str) -> np.ndarray | float:
    if per_group:
        return values
    if np.isnan(values).all():
        raise MetricInputError(
            f"{what}: every group has only positives or only negatives; nothing to average"
        )
    return float(np.nanmean(values))


def roc_auc(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    average: Average = "macro",
    per_group: bool = False,
) -> np.ndarray | float:
    """ROC-AUC for tag-based evaluation; ``scores`` and ``relevance`` are (items, tags).

    ``average="macro"``: one AUC per tag (column: how well the items are ranked for that tag),
    then the unweighted mean over tags; this is sklearn's ``average="macro"`` and what tagging
    papers report. ``average="per_sample"``: one AUC per item (row: how well the tags are ranked
    for that item), mean over items; sklearn's ``average="samples"``. For a (queries, items)
    retrieval matrix, ``per_sample`` gives the per-query AUC.

    Columns (rows) with no positive or no negative are skipped: NaN with ``per_group=True``,
    left out of the mean, counted by :func:`evaluate_tagging`. Tied scores count 1/2.
    """
    s, y = _tagging(scores, relevance, average)
    return _average(_rows_roc_auc(s, y), per_group, "roc_auc")


def pr_auc(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    average: Average = "macro",
    per_group: bool = False,
) -> np.ndarray | float:
    """PR-AUC as average precision (sklearn ``average_precision_score``: the step-wise sum
    ``sum_n (R_n - R_{n-1}) P_n`` over thresholds, no trapezoidal interpolation). Layout,
    averaging and skipping exactly as :func:`roc_auc`, so both average over the same groups.
    """
    s, y = _tagging(scores, relevance, average)
    return _average(_rows_pr_auc(s, y), per_group, "pr_auc")


def evaluate_tagging(
    scores: ArrayLike, relevance: ArrayLike, *, average: Average = "macro"
) -> dict[str, float]:
    """``{"ROC-AUC", "PR-AUC", "n_groups", "n_groups_skipped"}`` for (items, tags) inputs."""
    s, y = _tagging(scores, relevance, average)
    roc = _rows_roc_auc(s, y)
    return {
        "ROC-AUC": _average(roc, False, "roc_auc"),
        "PR-AUC": _average(_rows_pr_auc(s, y), False, "pr_auc"),
        "n_groups": int(roc.size),
        "n_groups_skipped": int(np.isnan(roc).sum()),
    }


# --------------------------------------------------------------------------- classification


def top_k_accuracy(
    scores: ArrayLike, labels: ArrayLike, k: int = 1, *, per_item: bool = False
) -> np.ndarray | float:
    """Zero-shot classification accuracy: the true class is among the k best-scored classes.

    ``scores`` is (items, classes); ``labels`` is (items,) integer class indices or an
    (items, classes) one-hot matrix. Ties are pessimistic: a true class tied with another
    class at the k-th place is a miss (the true class's rank is the number of classes scoring
    >= it).
    """
    k = _check_k(k)
    s = _scores_2d(scores)
    lab = _to_numpy(labels, "labels")
    if lab.ndim == 2:
        if lab.shape != s.shape:
            raise MetricInputError(f"one-hot labels shape {lab.shape} != scores shape {s.shape}")
        onehot = _binary(lab, "labels")
        if not (onehot.sum(axis=1) == 1).all():
            raise MetricInputError("one-hot labels must have exactly one 1 per row")
        lab = onehot.argmax(axis=1)
    if lab.ndim != 1 or lab.shape[0] != s.shape[0]:
        raise MetricInputError(
            f"labels must have shape ({s.shape[0]},) to match scores {s.shape}, got {lab.shape}"
        )
    if not np.issubdtype(lab.dtype, np.integer):
        if not (np.issubdtype(lab.dtype, np.floating) and np.all(lab == np.round(lab))):
            raise MetricInputError(f"labels must be integer class indices, got dtype {lab.dtype}")
        lab = lab.astype(np.int64)
    if lab.min() < 0 or lab.max() >= s.shape[1]:
        raise MetricInputError(
            f"labels must lie in [0, {s.shape[1]}), found {int(lab.min())}..{int(lab.max())}"
        )
    true = s[np.arange(s.shape[0]), lab]
    rank = np.count_nonzero(s >= true[:, None], axis=1)
    hit = (rank <= k).astype(np.float64)
    return hit if per_item else float(hit.mean())


def triplet_accuracy(
    anchor_pos_scores: ArrayLike, anchor_neg_scores: ArrayLike, *, per_triplet: bool = False
) -> np.ndarray | float:
    """Fraction of triplets whose positive scores above the negative (similarities, higher =
    closer; negate distances first). A tie counts 1/2, so a constant scorer gets 0.5, chance.
    """
    p = _to_numpy(anchor_pos_scores, "anchor_pos_scores")
    n = _to_numpy(anchor_neg_scores, "anchor_neg_scores")
    if p.shape != n.shape:
        raise MetricInputError(
            f"anchor_pos_scores shape {p.shape} != anchor_neg_scores shape {n.shape}"
        )
    p, n = p.astype(np.float64).ravel(), n.astype(np.float64).ravel()
    if p.size == 0:
        raise MetricInputError("no triplets given")
    if not (np.isfinite(p).all() and np.isfinite(n).all()):
        raise MetricInputError("triplet scores must be finite")
    correct = (p > n) + 0.5 * (p == n)
    return correct if per_triplet else float(correct.mean())


# --------------------------------------------------------------------------- bootstrap


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _ci_from_indices(
    values: np.ndarray, idx: np.ndarray, confidence: float, statistic: str
) -> tuple[float, float, float]:
    stat = np.mean if statistic == "mean" else np.median
    boot = np.empty(idx.shape[0])
    step = max(1, _CHUNK_ELEMENTS // values.size)
    for a in range(0, idx.shape[0], step):
        boot[a : a + step] = stat(values[idx[a : a + step]], axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(stat(values)), float(low), float(high)


def bootstrap_ci(
    per_query_values: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Literal["mean", "median"] = "mean",
) -> tuple[float, float, float]:
    """Percentile bootstrap over queries: ``(statistic of the values, low, high)``.

    Queries are resampled with replacement ``n_resamples`` times from ``np.random.default_rng(
    seed)``; the bounds are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles
    of the resampled statistic. Same values and seed, same interval. Use ``statistic="median"``
    for median rank. The interval reflects query sampling only, not training randomness.
    """
    v = _to_numpy(per_query_values, "per_query_values").astype(np.float64).ravel()
    if v.size == 0:
        raise MetricInputError("per_query_values is empty")
    if not np.isfinite(v).all():
        raise MetricInputError(
            "per_query_values must be finite (drop the NaN of excluded queries first)"
        )
    n_resamples = _check_k(n_resamples, "n_resamples")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence!r}")
    if statistic not in ("mean", "median"):
        raise MetricInputError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise MetricInputError(f"seed must be an int, got {seed!r}")
    idx = _resample_indices(v.size, n_resamples, int(seed))
    return _ci_from_indices(v, idx, confidence, statistic)


# --------------------------------------------------------------------------- evaluate


def evaluate_retrieval(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 10,
    ndcg_k: int = 10,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    empty_queries: EmptyPolicy = "raise",
) -> dict[str, float]:
    """All retrieval metrics of a (Q, N) score matrix, each with a bootstrap CI over queries.

    Keys, in order: ``R@k`` for each k in ``ks``, ``median_rank``, ``mean_rank``, ``MRR``,
    ``mAP@{map_k}``, ``nDCG@{ndcg_k}``, each followed by ``<key>_ci_low`` and ``<key>_ci_high``
    (one set of resampled queries, shared by all metrics, so the intervals are paired); then
    ``n_queries`` (evaluated), ``n_queries_excluded`` (no relevant item) and ``n_items``.
    Relevance must be binary here; use :func:`ndcg_at_k` for graded gains.
    """
    ks = tuple(_check_k(k, "ks entry") for k in ks)
    map_k, ndcg_k = _check_k(map_k, "map_k"), _check_k(ndcg_k, "ndcg_k")
    n_resamples = _check_k(n_resamples, "n_resamples")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence!r}")
    s, rel = validate_scores(scores, relevance, empty_queries=empty_queries)
    r = _rank(s, rel)
    kept = r.n_rel > 0
    if not kept.any():
        raise MetricInputError("no query has a relevant item; nothing to evaluate")
    first = _first_rank(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = _per_query_sum(r, np.where(r.rank <= map_k, r.m / r.rank, 0.0)) / np.minimum(
            map_k, r.n_rel
        )
    per_query: dict[str, tuple[np.ndarray, str]] = {
        f"R@{k}": ((first <= k).astype(np.float64), "mean") for k in ks
    }
    per_query["median_rank"] = (first, "median")
    per_query["mean_rank"] = (first, "mean")
    per_query["MRR"] = (1.0 / first, "mean")
    per_query[f"mAP@{map_k}"] = (ap, "mean")
    per_query[f"nDCG@{ndcg_k}"] = (_ndcg_values(r, ndcg_k), "mean")

    n = int(kept.sum())
    idx = _resample_indices(n, n_resamples, seed)
    out: dict[str, float] = {}
    for key, (values, statistic) in per_query.items():
        point, low, high = _ci_from_indices(values[kept], idx, confidence, statistic)
        out[key], out[f"{key}_ci_low"], out[f"{key}_ci_high"] = point, low, high
    out["n_queries"] = n
    out["n_queries_excluded"] = int((~kept).sum())
    out["n_items"] = r.n_items
    return out
