"""Find the same recording stored more than once: other formats, bitrates, trims, gain, rates.

Why from vectors: a transcode, a resampled or louder copy, or a trimmed one sounds the same, so
its window vectors match the original's window by window, where a byte hash or a tag comparison
fails. A pair is a duplicate when all of these hold (thresholds measured by
bench/bench_duplicates.py on made variants of the demo tracks):

- the track vectors are close: cosine >= ``track_min``;
- the windows change alike over time: for some time shift (a trim moves every window by the
  same amount), the paired windows' deviations from their track's mean window correlate
  (``window_match`` >= ``window_min``, see :func:`window_match`). Two pieces of one style
  resemble each other on average (a zero-shot tag space gives two Bach chorales a cosine of
  0.99); only a copy follows the original's changes window by window;
- the lengths are compatible: shorter / longer >= ``duration_ratio_min`` (a trimmed copy keeps
  most of the recording).

Pairs are joined into groups (union-find), each with the evidence of every pair that joined it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

TRACK_MIN = 0.95
WINDOW_MIN = 0.8
DURATION_RATIO_MIN = 0.6
NEIGHBOURS = 10


@dataclass
class TrackVectors:
    """What duplicate finding needs of a track."""

    id: int
    path: str
    duration: float
    vector: np.ndarray
    window_vectors: np.ndarray  # (n_windows, dim)
    window_starts: np.ndarray | None = None  # seconds; None: consecutive 1-s windows
    title: str | None = None
    artist: str | None = None


@dataclass
class PairEvidence:
    """Why two tracks were taken for one recording."""

    a: int
    b: int
    track_cosine: float
    window_match: float
    duration_ratio: float

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class DuplicateGroup:
    """Tracks holding one recording, longest first, and the evidence joining them."""

    tracks: list[dict[str, Any]]
    evidence: list[PairEvidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tracks": self.tracks, "evidence": [e.to_json() for e in self.evidence]}


def window_match(
    a: np.ndarray,
    b: np.ndarray,
    a_starts: np.ndarray | None = None,
    b_starts: np.ndarray | None = None,
    *,
    max_shift: float | None = None,
) -> float:
    """How alike two tracks change over time: the best, over time shifts, of the correlation
    between their paired windows' deviations from each track's mean window.

    The windows of the track with fewer are paired, after the shift, with the other's windows
    nearest in time (within half the window spacing; indexing samples at most a few windows per
    track, so some have no partner, but at least half and two must). Two pieces of one style
    resemble each other on average, so their raw windows match; their deviations over time do
    not, where a copy's follow the original's. ``max_shift``: the largest time shift tried
    in seconds (a copy trimmed by d seconds is shifted by at most d).
    """
    if len(a) < 2 or len(b) < 2:
        return 0.0
    sa = np.arange(len(a), dtype=np.float64) if a_starts is None else np.asarray(a_starts, float)
    sb = np.arange(len(b), dtype=np.float64) if b_starts is None else np.asarray(b_starts, float)
    if len(a) > len(b):
        a, b, sa, sb = b, a, sb, sa
    tol = 0.5 * float(np.median(np.diff(sb)))
    rows = np.arange(len(a))
    best = 0.0
    shifts = np.unique(np.round((sb[None, :] - sa[:, None]).ravel(), 3))
    if max_shift is not None:
        shifts = shifts[np.abs(shifts) <= max_shift + tol]
    for shift in shifts:
        gap = np.abs(sb[None, :] - (sa[:, None] + shift))  # (len(a), len(b))
        j = gap.argmin(axis=1)
        near = gap[rows, j] <= tol + 1e-6
        if near.sum() < max(2, (len(a) + 1) // 2) or len(set(j[near].tolist())) < near.sum():
            continue
        x, y = a[near], b[j[near]]
        x, y = x - x.mean(axis=0), y - y.mean(axis=0)
        denom = float(np.linalg.norm(x) * np.linalg.norm(y))
        if denom > 1e-12:
            best = max(best, float((x * y).sum()) / denom)
    return best


def compare(a: TrackVectors, b: TrackVectors) -> PairEvidence:
    longer = max(a.duration, b.duration)
    return PairEvidence(
        a=a.id,
        b=b.id,
        track_cosine=float(np.dot(a.vector, b.vector)),
        window_match=window_match(
            a.window_vectors,
            b.window_vectors,
            a.window_starts,
            b.window_starts,
            max_shift=abs(a.duration - b.duration),
        ),  # fmt: skip
        duration_ratio=float(min(a.duration, b.duration) / longer) if longer > 0 else 1.0,
    )


def is_duplicate(
    ev: PairEvidence,
    *,
    track_min: float = TRACK_MIN,
    window_min: float = WINDOW_MIN,
    duration_ratio_min: float = DURATION_RATIO_MIN,
) -> bool:
    return (
        ev.track_cosine >= track_min
        and ev.window_match >= window_min
        and ev.duration_ratio >= duration_ratio_min
    )


def find_duplicates(
    tracks: Sequence[TrackVectors],
    *,
    track_min: float = TRACK_MIN,
    window_min: float = WINDOW_MIN,
    duration_ratio_min: float = DURATION_RATIO_MIN,
    neighbours: int = NEIGHBOURS,
    chunk: int = 2048,
) -> list[DuplicateGroup]:
    """Groups of two or more tracks holding one recording (largest groups first).

    Candidates are each track's ``neighbours`` nearest tracks by vector (computed in chunks),
    so the work grows as n^2 / chunk in matrix products but never holds an n x n matrix.
    """
    n = len(tracks)
    if n < 2:
        return []
    matrix = np.stack([np.asarray(t.vector, np.float32) for t in tracks])
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    evidence: dict[tuple[int, int], PairEvidence] = {}
    for start in range(0, n, chunk):
        sims = matrix[start : start + chunk] @ matrix.T
        for row, i in enumerate(range(start, min(start + chunk, n))):
            sims[row, i] = -np.inf
            near = np.argsort(-sims[row], kind="stable")[:neighbours]
            for j in near.tolist():
                if sims[row, j] < track_min or (min(i, j), max(i, j)) in evidence:
                    continue
                da, db = tracks[i].duration, tracks[j].duration
                if min(da, db) < duration_ratio_min * max(da, db):
                    continue  # cheap test first: the window comparison costs more
                ev = compare(tracks[i], tracks[j])
                if is_duplicate(
                    ev,
                    track_min=track_min,
                    window_min=window_min,
                    duration_ratio_min=duration_ratio_min,
                ):
                    evidence[(min(i, j), max(i, j))] = ev
                    parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    groups = []
    for idx in members.values():
        if len(idx) < 2:
            continue
        idx.sort(key=lambda i: (-tracks[i].duration, tracks[i].path))
        inside = set(idx)
        groups.append(
            DuplicateGroup(
                tracks=[
                    {
                        "id": tracks[i].id,
                        "path": tracks[i].path,
                        "duration": tracks[i].duration,
                        "title": tracks[i].title,
                        "artist": tracks[i].artist,
                    }
                    for i in idx
                ],  # fmt: skip
                evidence=[ev for (i, j), ev in evidence.items() if i in inside and j in inside],
            )
        )
    groups.sort(key=lambda g: (-len(g.tracks), g.tracks[0]["path"]))
    return groups


def group_of(groups: Sequence[DuplicateGroup]) -> dict[int, int]:
    """Track id -> the id of its group's first (longest) track, for collapsing hits."""
    return {t["id"]: g.tracks[0]["id"] for g in groups for t in g.tracks}


def library_tracks(store: Any, *, ids: Sequence[int] | None = None) -> list[TrackVectors]:
    """Every track of a store (or those of ``ids``) as :class:`TrackVectors`."""
    cols = [
        "id",
        "path",
        "duration",
        "vector",
        "window_vectors",
        "window_starts",
        "title",
        "artist",
    ]
    out = []
    for r in store.rows(ids, columns=cols):
        vector = np.asarray(r["vector"], np.float32)
        out.append(
            TrackVectors(
                id=int(r["id"]),
                path=r["path"],
                duration=float(r["duration"]),
                vector=vector,
                window_vectors=np.asarray(r["window_vectors"], np.float32).reshape(-1, len(vector)),
                window_starts=np.asarray(r["window_starts"], np.float64),
                title=r["title"],
                artist=r.get("artist"),
            )  # fmt: skip
        )
    out.sort(key=lambda t: t.path)
    return out
