"""Variety in a ranked list: versions of one recording collapsed, a cap per artist or album,
and maximal marginal relevance (MMR) re-ranking.

Why after ranking: each option only removes or reorders candidates that the search found, so a
search asks for more candidates than it returns (``CANDIDATE_FACTOR`` times ``k``) and these
rules pick the ``k`` shown.

- ``collapse``: candidates holding one recording (melodex.library.duplicates, among the
  candidates, from their vectors only: a search decodes no audio, so a trim off the window grid
  that `melodex duplicates` finds from the audio may stay) keep only the best-ranked of them;
- ``per_artist`` / ``per_album``: at most that many hits of one artist / album (tracks without
  the tag are never capped);
- ``diversity`` (MMR, Carbonell & Goldstein 1998): with lambda = 1 - diversity, each next hit is
  the candidate maximising ``lambda * relevance - (1 - lambda) * max cosine to the hits taken``,
  relevance being the candidate's score rescaled to [0, 1] over the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from melodex.errors import ParameterError

CANDIDATE_FACTOR = 5


@dataclass(frozen=True)
class Variety:
    """The variety options of a search (all off by default)."""

    collapse: bool = False
    per_artist: int | None = None
    per_album: int | None = None
    diversity: float = 0.0

    def __post_init__(self) -> None:
        for name in ("per_artist", "per_album"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParameterError(f"{name} must be at least 1, not {value}")
        if not 0.0 <= self.diversity <= 1.0:
            raise ParameterError(f"diversity must be in [0, 1], not {self.diversity}")

    def __bool__(self) -> bool:
        return bool(self.collapse or self.per_artist or self.per_album or self.diversity > 0)


def arrange(hits: list[Any], *, k: int, variety: Variety, store: Any) -> list[Any]:
    """The ``k`` hits the variety rules keep from ranked ``hits``, renumbered from 1."""
    if not variety:
        return hits[:k]
    if variety.collapse:
        hits = _collapse(hits, store)
    if variety.diversity > 0 and len(hits) > 1:
        hits = _mmr(hits, store, diversity=variety.diversity)
    kept: list[Any] = []
    counts: dict[tuple[str, str], int] = {}
    for hit in hits:
        keys = [
            (field, value)
            for field, cap in (("artist", variety.per_artist), ("album", variety.per_album))
            if cap is not None and (value := getattr(hit, field))
        ]
        caps = {"artist": variety.per_artist, "album": variety.per_album}
        if any(counts.get(key, 0) >= (caps[key[0]] or 0) for key in keys):
            continue
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        kept.append(hit)
        if len(kept) == k:
            break
    for position, hit in enumerate(kept, start=1):
        hit.rank = position
    return kept


def _collapse(hits: list[Any], store: Any) -> list[Any]:
    from melodex.library.duplicates import find_duplicates, group_of, library_tracks

    tracks = library_tracks(store, ids=[h.id for h in hits])
    first = group_of(find_duplicates(tracks, neighbours=len(tracks), audio=False))
    seen: set[int] = set()
    out = []
    for hit in hits:
        group = first.get(hit.id, hit.id)
        if group in seen:
            continue
        seen.add(group)
        out.append(hit)
    return out


def _mmr(hits: list[Any], store: Any, *, diversity: float) -> list[Any]:
    rows = {
        r["id"]: r["vector"] for r in store.rows([h.id for h in hits], columns=["id", "vector"])
    }
    hits = [h for h in hits if h.id in rows]
    vectors = np.asarray([rows[h.id] for h in hits], np.float32)
    scores = np.asarray([h.score for h in hits], np.float64)
    span = scores.max() - scores.min()
    relevance = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    sims = vectors @ vectors.T
    lam = 1.0 - diversity
    order: list[int] = []
    left = list(range(len(hits)))
    nearest = np.full(len(hits), -np.inf)
    while left:
        redundancy = np.where(np.isfinite(nearest[left]), nearest[left], 0.0)
        gain = lam * relevance[left] - (1 - lam) * redundancy
        pick = left[int(np.argmax(gain))]
        order.append(pick)
        left.remove(pick)
        nearest = np.maximum(nearest, sims[pick])
    return [hits[i] for i in order]
