"""A search result, kept apart from :mod:`melodex.library.library` so that the cold search path
(:mod:`melodex.library.snapshot`) can build results without importing the store stack."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Hit:
    """One search result; ``to_json`` is the stable JSON contract of search and similar."""

    rank: int
    score: float
    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    duration: float
    segment_start: float | None
    bpm: float | None = None
    key: str | None = None
    mode: str | None = None
    vector_score: float | None = None  # cosine (hybrid search: before fusion and penalties)
    text_score: float | None = None  # BM25 of the metadata match (hybrid search), else None

    def to_json(self) -> dict[str, Any]:
        # the fields one by one: ``asdict`` deep-copies each value, ~20 us a hit on a server
        return {name: getattr(self, name) for name in _HIT_FIELDS}


_HIT_FIELDS = tuple(f.name for f in fields(Hit))


@dataclass
class Description:
    """What a track sounds like: the taggers' tags, nearest texts and nearest library tracks."""

    path: str
    tags: list[tuple[str, float]]
    texts: list[tuple[str, float]]
    similar: list[Hit]
    #: the nearest texts of a named text set: text, score, item, kind (library/text_sets.py)
    matches: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "path": self.path,
            "tags": [{"text": t, "score": s} for t, s in self.tags],
            "texts": [{"text": t, "score": s} for t, s in self.texts],
            "similar": [h.to_json() for h in self.similar],
        }
        if self.matches is not None:
            out["matches"] = self.matches
        return out
