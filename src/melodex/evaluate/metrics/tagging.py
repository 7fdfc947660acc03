"""Tag-based evaluation: ROC-AUC and PR-AUC (average precision) per tag or per item.

Layout ``(items, tags)``. Pairwise metrics count a tied pair 1/2, as
``sklearn.metrics.roc_auc_score``; PR-AUC is sklearn's ``average_precision_score`` (tied scores
form one threshold). Groups (tags, or items with ``average="per_sample"``) with only positives or
only negatives are skipped and counted, where sklearn raises.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from melodex.evaluate.metrics.validation import MetricInputError, binary, scores_2d, to_numpy

Average = Literal["macro", "per_sample"]

__all__ = ["Average", "evaluate_tagging", "pr_auc", "roc_auc", "sorted_runs"]


def sorted_runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    first, last = sorted_runs(xs)
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
    _, last = sorted_runs(xs)
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
    s = scores_2d(scores)
    y = to_numpy(relevance, "relevance")
    if y.shape != s.shape:
        raise MetricInputError(f"relevance shape {y.shape} does not match scores shape {s.shape}")
    y = binary(y, "relevance")
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
