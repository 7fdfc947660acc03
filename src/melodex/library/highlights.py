"""Where in a track: each indexed window scored against a text, or against the track itself.

Why only the indexed windows: indexing keeps the vectors of at most a few windows per track
(melodex-base: 8), so a moment can only be one of those; with no query the preview is the
window most like the whole track (its most typical moment).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class Moment:
    start: float
    end: float
    score: float


@dataclass
class Highlight:
    """A track's windows, best first; ``start`` is the preview offset (the best window's)."""

    path: str
    query: str | None
    start: float | None
    moments: list[Moment]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def window_seconds(model: Any, starts: np.ndarray) -> float:
    """The model's window length, else the smallest spacing of the window starts."""
    samples, rate = getattr(model, "window_samples", None), getattr(model, "sample_rate", None)
    if samples and rate:
        return float(samples) / float(rate)
    gaps = np.diff(np.sort(starts))
    return float(gaps[gaps > 0].min()) if (gaps > 0).any() else 0.0


def highlight(
    *,
    path: str,
    vector: np.ndarray,
    window_vectors: np.ndarray,
    window_starts: np.ndarray,
    duration: float,
    query: np.ndarray | None,
    query_text: str | None,
    length: float,
) -> Highlight:
    """Score each window by cosine with ``query`` (or with the track ``vector``)."""
    target = np.asarray(vector if query is None else query, np.float32)
    windows = np.asarray(window_vectors, np.float32).reshape(-1, len(target))
    starts = np.asarray(window_starts, np.float64)
    scores = windows @ target
    order = np.argsort(-scores, kind="stable")
    moments = [
        Moment(start=round(float(starts[i]), 3),
               end=round(min(float(starts[i]) + length, duration), 3),
               score=float(scores[i]))
        for i in order
    ]  # fmt: skip
    return Highlight(
        path=path, query=query_text, start=moments[0].start if moments else None, moments=moments
    )
