"""Hybrid ranking: the vector ranking and the full-text ranking fused by reciprocal rank fusion,
with negated terms subtracted as a score penalty.

Why reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009): BM25 scores and cosine
similarities live on unrelated scales, and RRF needs no calibration between them. A track's fused
score is ``sum over lists of 1 / (RRF_K + rank)``, ranks from 1, over the vector ranking and the
text ranking; a track absent from a list gets nothing from it. So when the text matches names
(a composer, an album), the tracks it names come first, ordered among themselves by both lists;
when it matches no metadata, the order is the vector order and the score the cosine.

The vector ranking holds the top ``POOL`` tracks by similarity plus every text match, each scored
exactly, so a named track's vector rank is its rank among these candidates.

Negation: each excluded text X ("no vocals", ``--exclude vocals``) is embedded, and every
candidate's similarity becomes ``cos(track, query) - EXCLUDE_WEIGHT * max_X cos(track, X)``
before ranking; tracks whose metadata match X leave the text ranking. The effect is measured by
scripts/measure_search.py (docs/search.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from melodex.errors import ParameterError

RRF_K = 60
POOL = 100
EXCLUDE_WEIGHT = 0.5
MODES = ("hybrid", "vector", "text")

#: (query vectors (Q, D), k, allowed ids or None) -> (scores (Q, k'), ids (Q, k')), best first.
TopFn = Callable[[np.ndarray, int, "np.ndarray | None"], tuple[np.ndarray, np.ndarray]]


@dataclass
class Ranked:
    """One ranked track: its final score, and the parts it came from."""

    id: int
    score: float
    vector_score: float | None = None
    text_score: float | None = None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ParameterError(f"search mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def rrf(rankings: Sequence[Sequence[int]], *, rrf_k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion of several rankings (ids, best first)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, tid in enumerate(ranking, start=1):
            fused[tid] = fused.get(tid, 0.0) + 1.0 / (rrf_k + rank)
    return fused


def exact_scores(top: TopFn, vectors: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Similarity of each query vector to each of ``ids``: an array (Q, len(ids)); ids the
    index lacks score -inf."""
    ids = list(ids)
    out = np.full((len(vectors), len(ids)), -np.inf, np.float32)
    if not ids:
        return out
    scores, found = top(vectors, len(ids), np.asarray(ids, np.int64))
    where = {tid: j for j, tid in enumerate(ids)}
    for q in range(len(vectors)):
        for s, tid in zip(scores[q], found[q], strict=True):
            out[q, where[int(tid)]] = s
    return out


def rank(
    *,
    top: TopFn,
    query: np.ndarray,
    text_hits: Sequence[tuple[int, float]],
    k: int,
    mode: str = "hybrid",
    allowed: np.ndarray | None = None,
    exclude_vectors: np.ndarray | None = None,
    exclude_weight: float = EXCLUDE_WEIGHT,
    drop: Sequence[int] = (),
    pool: int = POOL,
) -> list[Ranked]:
    """The top ``k`` tracks for a query vector and its full-text hits (see the module doc).

    ``text_hits``: (id, BM25) best first, already restricted to ``allowed`` and without the
    tracks whose metadata name an excluded text; ``drop``: ids never returned (a seed track).
    """
    check_mode(mode)
    dropped = set(drop)
    if mode == "text":
        hits = [(i, s) for i, s in text_hits if i not in dropped][:k]
        return [Ranked(i, s, text_score=s) for i, s in hits]
    excluding = exclude_vectors is not None and len(exclude_vectors) > 0
    want = max(pool, k) * (2 if excluding else 1) + len(dropped)
    scores, ids = top(query[None, :], want, allowed)
    vector = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True)}
    text = {i: s for i, s in text_hits if i not in dropped} if mode == "hybrid" else {}
    extra = [i for i in text if i not in vector]
    if extra:
        for tid, s in zip(extra, exact_scores(top, query[None, :], extra)[0], strict=True):
            if np.isfinite(s):
                vector[tid] = float(s)
    for tid in dropped:
        vector.pop(tid, None)
    final = dict(vector)
    if excluding:
        cands = list(vector)
        sims = exact_scores(top, np.asarray(exclude_vectors, np.float32), cands).max(axis=0)
        for tid, sim in zip(cands, sims.tolist(), strict=True):
            final[tid] = vector[tid] - exclude_weight * sim
    vector_order = sorted(final, key=lambda t: (-final[t], t))
    if not text:
        return [Ranked(t, final[t], vector_score=vector[t]) for t in vector_order[:k]]
    fused = rrf([vector_order, [i for i, _ in sorted(text.items(), key=lambda x: (-x[1], x[0]))]])
    order = sorted(fused, key=lambda t: (-fused[t], t))[:k]
    return [Ranked(t, fused[t], vector_score=vector.get(t), text_score=text.get(t)) for t in order]
