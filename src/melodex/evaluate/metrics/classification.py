"""Classification and triplet metrics: zero-shot top-k accuracy, triplet accuracy."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from melodex.evaluate.metrics.validation import (
    MetricInputError,
    binary,
    check_k,
    scores_2d,
    to_numpy,
)

__all__ = ["top_k_accuracy", "triplet_accuracy", "vote_accuracy"]


def top_k_accuracy(
    scores: ArrayLike, labels: ArrayLike, k: int = 1, *, per_item: bool = False
) -> np.ndarray | float:
    """Zero-shot classification accuracy: the true class is among the k best-scored classes.

    ``scores`` is (items, classes); ``labels`` is (items,) integer class indices or an
    (items, classes) one-hot matrix. Ties are pessimistic: a true class tied with another
    class at the k-th place is a miss (the true class's rank is the number of classes scoring
    >= it).
    """
    k = check_k(k)
    s = scores_2d(scores)
    lab = to_numpy(labels, "labels")
    if lab.ndim == 2:
        if lab.shape != s.shape:
            raise MetricInputError(f"one-hot labels shape {lab.shape} != scores shape {s.shape}")
        onehot = binary(lab, "labels")
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
    p = to_numpy(anchor_pos_scores, "anchor_pos_scores")
    n = to_numpy(anchor_neg_scores, "anchor_neg_scores")
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


def vote_accuracy(
    first_scores: ArrayLike,
    second_scores: ArrayLike,
    first_votes: ArrayLike,
    *,
    tie: str = "half",
    per_triplet: bool = False,
) -> np.ndarray | float:
    """Agreement with human votes on "which of two is closer to the anchor" (DIM-SIM).

    The prediction is "first" when ``first_scores > second_scores``; ``first_votes`` is 1 where
    people chose the first, 0 where they chose the second. A tie counts 1/2 (``tie="half"``,
    chance) or predicts the second (``tie="second"``: TTMR++'s ``if song1_sim > song2_sim``).
    """
    a = to_numpy(first_scores, "first_scores").astype(np.float64).ravel()
    b = to_numpy(second_scores, "second_scores").astype(np.float64).ravel()
    v = to_numpy(first_votes, "first_votes").ravel()
    if not (a.shape == b.shape == v.shape) or a.size == 0:
        raise MetricInputError(
            f"first_scores, second_scores and first_votes must be non-empty and of one length, "
            f"got {a.shape}, {b.shape}, {v.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MetricInputError("triplet scores must be finite")
    votes = binary(v, "first_votes")
    if tie not in ("half", "second"):
        raise MetricInputError(f"tie must be 'half' or 'second', got {tie!r}")
    correct = ((a > b) == votes).astype(np.float64)
    if tie == "half":
        correct[a == b] = 0.5
    return correct if per_triplet else float(correct.mean())
