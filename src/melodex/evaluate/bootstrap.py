"""Percentile-bootstrap confidence intervals over per-query values.

Kept apart from the metrics so the resampling scheme (what is resampled, how) can change without
touching any metric: the metrics produce per-query values, this module turns them into
``(point, low, high)``.

When several queries come from one track (five captions of a clip), they are not independent
samples: resampling captions treats them as if they were and gives intervals that are too
narrow. Pass ``clusters`` (the track of each query) and whole tracks are resampled instead,
each drawn track bringing all of its queries (the cluster bootstrap).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from melodex.evaluate.metrics.validation import MetricInputError, check_k, to_numpy

__all__ = [
    "bootstrap_ci",
    "ci_from_clusters",
    "ci_from_indices",
    "cluster_ids",
    "resample_indices",
]

_CHUNK_ELEMENTS = 1 << 22


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n)`` indices drawn with replacement from ``default_rng(seed)``."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def ci_from_indices(
    values: np.ndarray, idx: np.ndarray, confidence: float, statistic: str
) -> tuple[float, float, float]:
    """``(statistic of values, low, high)`` over the resamples ``idx`` (see `bootstrap_ci`)."""
    stat = np.mean if statistic == "mean" else np.median
    boot = np.empty(idx.shape[0])
    step = max(1, _CHUNK_ELEMENTS // max(values.size, 1))
    for a in range(0, idx.shape[0], step):
        boot[a : a + step] = stat(values[idx[a : a + step]], axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(stat(values)), float(low), float(high)


def cluster_ids(clusters: ArrayLike, n: int) -> np.ndarray:
    """Dense ``0..C-1`` codes of per-query cluster labels (any hashable values)."""
    labels = list(np.asarray(clusters, dtype=object).ravel())
    if len(labels) != n:
        raise MetricInputError(f"clusters has {len(labels)} labels for {n} values")
    codes: dict[object, int] = {}
    return np.array([codes.setdefault(label, len(codes)) for label in labels], dtype=np.int64)


def ci_from_clusters(
    values: np.ndarray,
    codes: np.ndarray,
    n_resamples: int,
    seed: int,
    confidence: float,
    statistic: str,
) -> tuple[float, float, float]:
    """Cluster bootstrap: draw ``C`` clusters with replacement, pool all their values."""
    n_clusters = int(codes.max()) + 1
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_resamples, n_clusters))
    boot = np.empty(n_resamples)
    if statistic == "mean":  # weighted by cluster size: sum of values / number of values
        sums = np.bincount(codes, weights=values, minlength=n_clusters)
        sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
        for a in range(0, n_resamples, 256):
            counts = np.stack(
                [np.bincount(row, minlength=n_clusters) for row in draws[a : a + 256]]
            ).astype(np.float64)
            boot[a : a + 256] = (counts @ sums) / (counts @ sizes)
        point = float(values.mean())
    else:
        members = [np.flatnonzero(codes == c) for c in range(n_clusters)]
        for r, row in enumerate(draws):
            boot[r] = np.median(values[np.concatenate([members[c] for c in row])])
        point = float(np.median(values))
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def bootstrap_ci(
    per_query_values: ArrayLike,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: Literal["mean", "median"] = "mean",
    clusters: ArrayLike | None = None,
) -> tuple[float, float, float]:
    """Percentile bootstrap over queries: ``(statistic of the values, low, high)``.

    Queries are resampled with replacement ``n_resamples`` times from ``np.random.default_rng(
    seed)``; the bounds are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles
    of the resampled statistic. Same values and seed, same interval. Use ``statistic="median"``
    for median rank. The interval reflects query sampling only, not training randomness.

    ``clusters`` (one label per value, e.g. the query's track) resamples whole clusters
    instead (see the module docstring); use it whenever one track has several queries.
    """
    v = to_numpy(per_query_values, "per_query_values").astype(np.float64).ravel()
    if v.size == 0:
        raise MetricInputError("per_query_values is empty")
    if not np.isfinite(v).all():
        raise MetricInputError(
            "per_query_values must be finite (drop the NaN of excluded queries first)"
        )
    n_resamples = check_k(n_resamples, "n_resamples")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence!r}")
    if statistic not in ("mean", "median"):
        raise MetricInputError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise MetricInputError(f"seed must be an int, got {seed!r}")
    if clusters is not None:
        codes = cluster_ids(clusters, v.size)
        return ci_from_clusters(v, codes, n_resamples, int(seed), confidence, statistic)
    idx = resample_indices(v.size, n_resamples, int(seed))
    return ci_from_indices(v, idx, confidence, statistic)
