"""Rank-based retrieval metrics: R@k, P@k, median/mean rank, MRR, AP@k, nDCG@k.

Layout: ``scores`` (Q, N), query ``q`` against item ``n``, higher = more relevant; ``relevance``
the same shape, bool or 0/1 (graded non-negative gains for `ndcg_at_k` only). Values are fractions
in [0, 1]; papers usually print percentages (R@10 = 39.2 means 0.392).

Each metric takes ``convention=`` (a `Convention`, a preset name such as ``"ttmr-pp"``, or None
for melodex's) and, where it matters, ``empty_queries=``: ``"raise"`` (the default of the bare
functions), ``"exclude"``, ``"zero"`` or None (follow the convention's ``empty``). The melodex
convention: 1-based ranks, pessimistic ties, R@k as hit rate, AP@k normalised by min(k, R),
queries without a relevant item left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from melodex.evaluate.metrics.conventions import Convention, parse_convention
from melodex.evaluate.metrics.ranking import (
    Ranking,
    first_rank,
    rank_relevant,
    ranking,
)
from melodex.evaluate.metrics.validation import (
    EmptyPolicy,
    MetricInputError,
    check_k,
    validate_scores,
)

__all__ = [
    "average_precision_at_k",
    "evaluate_retrieval",
    "jackknife_median",
    "map_at_k",
    "mean_rank",
    "median_rank",
    "mrr",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "recall_at_k_fraction",
    "summarise_ranks",
]

ConventionLike = Convention | str | None


def _empty_policy(empty_queries: EmptyPolicy, convention: Convention) -> str:
    """``"raise"``, ``"exclude"`` or ``"zero"``: None follows the convention."""
    if empty_queries is None:
        return "exclude" if convention.empty == "drop" else "zero"
    return empty_queries


def _finish(r: Ranking, values: np.ndarray, policy: str) -> np.ndarray:
    """Per-query values with empty queries NaN (excluded) or 0 (scored zero)."""
    return np.where(r.n_rel > 0, values, 0.0 if policy == "zero" else np.nan)


def _reduce(values: np.ndarray, per_query: bool) -> np.ndarray | float:
    if per_query:
        return values
    return float(np.nanmean(values))  # NaN only marks excluded queries; validation forbids all


def _per_query_sum(r: Ranking, weights: np.ndarray) -> np.ndarray:
    return np.bincount(r.q, weights=weights, minlength=r.n_rel.size)


def _prepare(
    scores: ArrayLike,
    relevance: ArrayLike,
    empty_queries: EmptyPolicy,
    convention: ConventionLike,
    *,
    graded: bool = False,
) -> tuple[Ranking, str, Convention]:
    conv = parse_convention(convention)
    policy = _empty_policy(empty_queries, conv)
    r = ranking(scores, relevance, policy, graded=graded, ties=conv.ties)  # type: ignore[arg-type]
    return r, policy, conv


# --------------------------------------------------------------------------- per-query values


def recall_values(r: Ranking, k: int, how: str) -> np.ndarray:
    """Per-query R@k: 1/0 hit (``how="hit"``) or the fraction found (``"fraction"``)."""
    if how == "hit":
        with np.errstate(invalid="ignore"):
            return (first_rank(r) <= k).astype(np.float64)
    hits = _per_query_sum(r, (r.rank <= k).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits / r.n_rel


def ap_values(r: Ranking, k: int | None, norm: str) -> np.ndarray:
    """Per-query AP@k, ``sum_{i<=k} P@i rel_i / Z`` with Z chosen by ``norm`` (module doc)."""
    k = r.n_items if k is None else k
    in_top = r.rank <= k
    total = _per_query_sum(r, np.where(in_top, r.m / r.rank, 0.0))
    if norm == "min-k-r":
        z = np.minimum(k, r.n_rel).astype(np.float64)
    elif norm == "relevant":
        z = r.n_rel.astype(np.float64)
    elif norm == "hits":
        z = _per_query_sum(r, in_top.astype(np.float64))
    elif norm == "none":
        z = np.ones(r.n_rel.size)
    else:
        raise MetricInputError(f"ap_norm must be min-k-r, hits, relevant or none, got {norm!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(z > 0, total / np.where(z > 0, z, 1.0), 0.0)


def precision_values(r: Ranking, k: int) -> np.ndarray:
    """Per-query P@k: relevant items in the top k, divided by k (also when k > N)."""
    return _per_query_sum(r, (r.rank <= k).astype(np.float64)) / k


def ndcg_rank_values(r: Ranking, k: int) -> np.ndarray:
    """Per-query nDCG@k over the ranks of ``r`` (linear gains, log2 discount)."""
    dcg = _per_query_sum(r, np.where(r.rank <= k, r.gain / np.log2(r.rank + 1.0), 0.0))
    idcg = _ideal_dcg(r.q, r.gain, r.start, r.n_rel.size, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return dcg / idcg


def _ideal_dcg(
    q: np.ndarray, gain: np.ndarray, start: np.ndarray, n_queries: int, k: int
) -> np.ndarray:
    order = np.lexsort((-gain, q))
    pos = np.arange(q.size) - start[q[order]] + 1
    g = gain[order]
    return np.bincount(
        q[order], weights=np.where(pos <= k, g / np.log2(pos + 1.0), 0.0), minlength=n_queries
    )


def ndcg_tie_averaged_values(scores: np.ndarray, gains: np.ndarray, k: int) -> np.ndarray:
    """Per-query nDCG@k with the gains of tied items averaged over their positions, as
    ``sklearn.metrics.ndcg_score`` (``ignore_ties=False``) computes it; NaN where the ideal DCG
    is 0 (no relevant item)."""
    from melodex.evaluate.metrics.tagging import sorted_runs

    Q, N = scores.shape
    discount = np.zeros(N)
    top = min(k, N)
    discount[:top] = 1.0 / np.log2(np.arange(top) + 2.0)
    disc_cum = np.concatenate([[0.0], np.cumsum(discount)])
    out = np.empty(Q)
    step = max(1, (1 << 22) // N)
    for a in range(0, Q, step):
        s, g = scores[a : a + step], gains[a : a + step]
        order = np.argsort(-s, axis=1, kind="stable")
        xs, gs = np.take_along_axis(s, order, 1), np.take_along_axis(g, order, 1)
        first, last = sorted_runs(xs)
        gain_cum = np.concatenate([np.zeros((xs.shape[0], 1)), np.cumsum(gs, axis=1)], axis=1)
        group_gain = np.take_along_axis(gain_cum, last + 1, 1) - np.take_along_axis(
            gain_cum, first, 1
        )
        size = (last - first + 1).astype(np.float64)
        group_disc = disc_cum[last + 1] - disc_cum[first]
        dcg = (group_gain / size * group_disc / size).sum(axis=1)  # each group counted once
        ideal = np.sort(g, axis=1)[:, ::-1]
        idcg = (ideal * discount[None, :]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a : a + step] = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), np.nan)
    return out


def jackknife_median(values: np.ndarray) -> float:
    """The bias-corrected jackknife estimate of the median, ``n * m - (n - 1) * mean(m_-i)``
    where ``m_-i`` is the median without value i (astropy ``jackknife_stats(x, np.median)[0]``,
    as TTMR reports median rank); computed in O(n log n) from the sorted values."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n < 2:
        raise MetricInputError(f"the jackknife needs at least 2 values, got {n}")
    i = np.arange(n)

    def kept(p: int) -> np.ndarray:  # value at position p of the sorted data without item i
        return x[np.where(p < i, p, p + 1)]

    m = n - 1
    loo = kept(m // 2) if m % 2 else (kept(m // 2 - 1) + kept(m // 2)) / 2.0
    med = float(np.median(x))
    return float(n * med - (n - 1) * loo.mean())


def summarise_ranks(first: np.ndarray, convention: Convention) -> tuple[float, float]:
    """``(median rank, mean rank)`` of 1-based best ranks under ``convention`` (base, floor,
    jackknife); NaN entries (queries without a relevant item) are left out."""
    ranks = first[np.isfinite(first)] - (1 - convention.rank_base)
    if ranks.size == 0:
        raise MetricInputError("no query has a relevant item; no rank to summarise")
    if convention.median == "jackknife" and ranks.size >= 2:
        median = jackknife_median(ranks)
    else:
        median = float(np.median(ranks))
        if convention.median == "floor":
            median = float(np.floor(median))
    return median, float(ranks.mean())


# --------------------------------------------------------------------------- public metrics


def recall_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray | float:
    """R@k under the convention's ``recall``: by default (melodex, TTMR, CLAP) the fraction of
    queries with at least one relevant item in the top k (a "hit"); with ``recall="fraction"``
    (TTMR++) the fraction of each query's relevant items found. ``k > N`` behaves as ``k = N``.
    """
    k = check_k(k)
    r, policy, conv = _prepare(scores, relevance, empty_queries, convention)
    return _reduce(_finish(r, recall_values(r, k, conv.recall), policy), per_query)


def recall_at_k_fraction(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray | float:
    """Fraction of each query's relevant items ranked in the top k, averaged over queries
    (information-retrieval recall, torchmetrics ``RetrievalRecall``), whatever the convention's
    ``recall`` says."""
    k = check_k(k)
    r, policy, _ = _prepare(scores, relevance, empty_queries, convention)
    return _reduce(_finish(r, recall_values(r, k, "fraction"), policy), per_query)


def precision_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int = 10,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray | float:
    """P@k: relevant items in the top k divided by k (Won et al. 2021 report P@10 per tag). A
    query with fewer than k relevant items cannot reach 1; with k > N the top k is the whole
    gallery and the divisor is still k (Won et al.'s code raises there)."""
    k = check_k(k)
    r, policy, _ = _prepare(scores, relevance, empty_queries, convention)
    return _reduce(_finish(r, precision_values(r, k), policy), per_query)


def median_rank(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> float:
    """Median over queries of the rank of the best-ranked relevant item.

    melodex convention: 1-based (perfect = 1.0), ``np.median`` (the mean of the two middle ranks
    for an even number of queries, so it can end in .5). ``ttmr``: 0-based, jackknife estimate;
    ``ttmr-pp``: 0-based; ``clap``: 1-based, floored. Queries without a relevant item have no rank
    and are left out under every convention. Lower is better.
    """
    r, _, conv = _prepare(scores, relevance, empty_queries, convention)
    return summarise_ranks(first_rank(r), conv)[0]


def mean_rank(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray | float:
    """Mean over queries of the rank of the best-ranked relevant item (base from the convention,
    1 by default). ``per_query=True`` returns the ranks (float, NaN for queries without one)."""
    r, _, conv = _prepare(scores, relevance, empty_queries, convention)
    ranks = first_rank(r) - (1 - conv.rank_base)
    return _reduce(ranks, per_query)


def mrr(
    scores: ArrayLike,
    relevance: ArrayLike,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray | float:
    """Mean reciprocal rank (1-based) of the first relevant item, untruncated."""
    r, policy, _ = _prepare(scores, relevance, empty_queries, convention)
    return _reduce(_finish(r, 1.0 / first_rank(r), policy), per_query)


def average_precision_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int | None = None,
    *,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray:
    """Per-query AP@k: ``sum_{i<=k} P@i * rel_i / Z``.

    melodex: Z = min(k, R), R = number of relevant items, which makes 1.0 reachable whenever
    every top slot that could hold a relevant item does, and rewards nothing for an empty top k.
    Other conventions: Z = hits in the top k (TTMR++), R (CLAP), 1 (TTMR). ``k=None`` gives
    untruncated AP. Returns shape (Q,), NaN (or 0) for queries without a relevant item.
    """
    r, policy, conv = _prepare(scores, relevance, empty_queries, convention)
    k = None if k is None else check_k(k)
    return _finish(r, ap_values(r, k, conv.ap_norm), policy)


def map_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int | None = 10,
    *,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> float:
    """Mean over queries of :func:`average_precision_at_k` (mAP@10 by default)."""
    ap = average_precision_at_k(
        scores, relevance, k, empty_queries=empty_queries, convention=convention
    )
    return float(np.nanmean(ap))


def ndcg_at_k(
    scores: ArrayLike,
    relevance: ArrayLike,
    k: int,
    *,
    per_query: bool = False,
    empty_queries: EmptyPolicy = "raise",
    convention: ConventionLike = None,
) -> np.ndarray | float:
    """nDCG@k with linear gains and a log2 discount: ``DCG@k = sum_{i<=k} gain_i / log2(i+1)``
    divided by the DCG@k of the relevance sorted by gain (the ideal ranking).

    ``relevance`` may be binary or graded (non-negative; the gain is the value itself, as in
    ``sklearn.metrics.ndcg_score``; pass ``2**rel - 1`` for exponential gains). Ties follow the
    convention: by rank (melodex: pessimistic, lower gains first within equal scores) or, with
    ``ndcg_ties="average"`` (TTMR++), averaged as sklearn does.
    """
    k = check_k(k)
    conv = parse_convention(convention)
    policy = _empty_policy(empty_queries, conv)
    if conv.ndcg_ties == "average":
        s, g = validate_scores(scores, relevance, graded=True, empty_queries=policy)  # type: ignore[arg-type]
        if not (g > 0).any():
            raise MetricInputError("no query has a relevant item; nothing to evaluate")
        values = ndcg_tie_averaged_values(s, g, k)
        if policy == "zero":
            values = np.nan_to_num(values, nan=0.0)
        return _reduce(values, per_query)
    r, policy, _ = _prepare(scores, relevance, empty_queries, conv, graded=True)
    return _reduce(_finish(r, ndcg_rank_values(r, k), policy), per_query)


# --------------------------------------------------------------------------- all at once


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
    convention: ConventionLike = None,
    clusters: ArrayLike | None = None,
) -> dict[str, float]:
    """All retrieval metrics of a (Q, N) score matrix, each with a bootstrap CI over queries.

    ``clusters`` (one label per query, e.g. the track a caption describes) makes the intervals
    a cluster bootstrap: whole tracks are resampled with all their queries
    (:mod:`melodex.evaluate.bootstrap`); without it queries are resampled one by one.

    Keys, in order: ``R@k`` for each k in ``ks``, ``median_rank``, ``mean_rank``, ``MRR``,
    ``mAP@{map_k}``, ``nDCG@{ndcg_k}``, each followed by ``<key>_ci_low`` and ``<key>_ci_high``
    (one set of resampled queries, shared by all metrics, so the intervals are paired); then
    ``n_queries`` (evaluated), ``n_queries_excluded`` (no relevant item, left out),
    ``n_queries_scored_zero`` (no relevant item, scored 0 under ``empty="zero"``) and
    ``n_items``. The median rank's point value follows the convention (floor, jackknife); its
    interval is the bootstrap of the plain median. Relevance must be binary here.
    """
    from melodex.evaluate.bootstrap import (
        ci_from_clusters,
        ci_from_indices,
        cluster_ids,
        resample_indices,
    )

    ks = tuple(check_k(k, "ks entry") for k in ks)
    map_k, ndcg_k = check_k(map_k, "map_k"), check_k(ndcg_k, "ndcg_k")
    n_resamples = check_k(n_resamples, "n_resamples")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence!r}")
    conv = parse_convention(convention)
    policy = _empty_policy(empty_queries, conv)
    s, rel = validate_scores(scores, relevance, empty_queries=policy)  # type: ignore[arg-type]
    r = rank_relevant(s, rel, ties=conv.ties)
    has = r.n_rel > 0
    if not has.any():
        raise MetricInputError("no query has a relevant item; nothing to evaluate")
    kept = has if policy == "exclude" else np.ones_like(has)
    first = first_rank(r)
    if conv.ndcg_ties == "average":
        ndcg = np.nan_to_num(ndcg_tie_averaged_values(s, rel.astype(np.float64), ndcg_k))
    else:
        ndcg = np.where(has, ndcg_rank_values(r, ndcg_k), 0.0)
    zeroed = np.where(has, 1.0, 0.0)
    per_query: dict[str, tuple[np.ndarray, str]] = {
        f"R@{k}": (np.where(has, recall_values(r, k, conv.recall), 0.0), "mean") for k in ks
    }
    shifted = first - (1 - conv.rank_base)
    per_query["median_rank"] = (shifted, "median")
    per_query["mean_rank"] = (shifted, "mean")
    per_query["MRR"] = (np.where(has, 1.0 / np.where(has, first, 1.0), 0.0), "mean")
    per_query[f"mAP@{map_k}"] = (np.where(has, ap_values(r, map_k, conv.ap_norm), 0.0), "mean")
    per_query[f"nDCG@{ndcg_k}"] = (ndcg * zeroed, "mean")

    n = int(kept.sum())
    idx = resample_indices(n, n_resamples, seed)
    ranked_idx = resample_indices(int(has.sum()), n_resamples, seed)
    codes = None if clusters is None else cluster_ids(clusters, len(has))

    def interval(values: np.ndarray, rows: np.ndarray, resampled: np.ndarray, statistic: str):
        if codes is None:
            return ci_from_indices(values[rows], resampled, confidence, statistic)
        _, dense = np.unique(codes[rows], return_inverse=True)
        return ci_from_clusters(values[rows], dense, n_resamples, seed, confidence, statistic)

    out: dict[str, float] = {}
    for key, (values, statistic) in per_query.items():
        if key in ("median_rank", "mean_rank"):  # ranks exist only for queries with one
            point, low, high = interval(values, has, ranked_idx, statistic)
            if key == "median_rank":
                point = summarise_ranks(first, conv)[0]
        else:
            point, low, high = interval(values, kept, idx, statistic)
        out[key], out[f"{key}_ci_low"], out[f"{key}_ci_high"] = point, low, high
    out["n_queries"] = n
    out["n_queries_excluded"] = int((~kept).sum())
    out["n_queries_scored_zero"] = int((kept & ~has).sum())
    out["n_items"] = r.n_items
    return out
