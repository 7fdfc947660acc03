"""The validating step every metric starts with: arrays in, checked NumPy arrays out.

Every metric accepts NumPy arrays or torch tensors (any device, any float dtype), never mutates
its input, and raises `MetricInputError` (a `ValueError`) whose message names the problem.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from melodex.errors import MelodexError

#: What to do with a query that has no relevant item: raise, leave it out of every mean
#: ("exclude"), score it 0 and keep it in the means ("zero", as torchmetrics and sklearn do), or
#: follow the convention in force (None).
EmptyPolicy = Literal["raise", "exclude", "zero"] | None

__all__ = ["EmptyPolicy", "MetricInputError", "check_k", "to_numpy", "validate_scores"]


class MetricInputError(MelodexError, ValueError):
    """Scores, relevance or an option given to a metric is malformed; the message says how."""


def to_numpy(x: Any, name: str) -> np.ndarray:
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


def scores_2d(scores: Any, name: str = "scores") -> np.ndarray:
    """A finite, non-empty, real (Q, N) float64 matrix."""
    s = to_numpy(scores, name)
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


def binary(relevance: np.ndarray, name: str) -> np.ndarray:
    """``relevance`` as bool; only bool or 0/1 values are accepted."""
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
    empty_queries : {"raise", "exclude", "zero", None}
        ``"raise"`` rejects queries that have no relevant item; every other value keeps them
        (the metrics then leave them out or score them 0).

    Raises
    ------
    MetricInputError (a ValueError)
        Naming the problem: shape, dtype, non-finite value, non-binary or negative relevance,
        queries without relevant items.
    """
    if empty_queries not in ("raise", "exclude", "zero", None):
        raise MetricInputError(
            f"empty_queries must be 'raise', 'exclude', 'zero' or None, got {empty_queries!r}"
        )
    s = scores_2d(scores)
    r = to_numpy(relevance, "relevance")
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
        r = binary(r, "relevance")
        has_relevant = r.any(axis=1)
    if empty_queries == "raise" and not has_relevant.all():
        empty = np.flatnonzero(~has_relevant)
        raise MetricInputError(
            f"{empty.size} of {s.shape[0]} queries have no relevant item "
            f"(first: {empty[:5].tolist()}); pass empty_queries='exclude' to leave them out "
            "or 'zero' to score them 0"
        )
    return s, r


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as an int >= 1, or `MetricInputError` naming ``name``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise MetricInputError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)
