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

Where the window vectors leave a pair undecided (track vectors and lengths agree, windows do
not: a trim whose cut is not a whole number of windows puts each of the copy's windows across
two of the original's), the audio decides: the two files' spectral-shape envelopes, aligned at the
best lag, correlate (``audio_match`` >= ``audio_min``, melodex.library.audio_match). That costs
a decode of the tracks concerned, so ``audio=False`` leaves it out.

Pairs are joined into groups (union-find), each with the evidence of every pair that joined it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from melodex.library.audio_match import Envelopes, envelope_match

TRACK_MIN = 0.95
WINDOW_MIN = 0.8
AUDIO_MIN = 0.7
DURATION_RATIO_MIN = 0.6
NEIGHBOURS = 10
#: shifts are tried every SHIFT_STEP of a window hop; a window within EXACT of a hop of the
#: moment asked is taken as it is
SHIFT_STEP = 1 / 8
EXACT = 0.05


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
    audio_match: float | None = None  # None: not needed (the windows decided) or not readable

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class DuplicateGroup:
    """Tracks holding one recording, longest first, and the evidence joining them."""

    tracks: list[dict[str, Any]]
    evidence: list[PairEvidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tracks": self.tracks, "evidence": [e.to_json() for e in self.evidence]}


def _window_times(starts: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) if starts is None else np.asarray(starts, np.float64)


def _spacing(*starts: np.ndarray) -> float:
    """The windows' hop: the smallest gap between consecutive windows of either track."""
    gaps = np.concatenate([np.diff(s) for s in starts])
    gaps = gaps[gaps > 1e-6]
    return float(gaps.min()) if len(gaps) else 1.0


def _at_times(
    vectors: np.ndarray, starts: np.ndarray, times: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """The window vector of a track at each of ``times`` (any shape): its window starting
    there, or the linear blend of the two consecutive windows (one hop apart) around it.
    Returns (vectors ``times.shape + (dim,)``, whether each time had one)."""
    hi = np.clip(np.searchsorted(starts, times, side="right"), 1, len(starts) - 1)
    lo = hi - 1
    gap = starts[hi] - starts[lo]
    w = np.clip((times - starts[lo]) / np.maximum(gap, 1e-9), 0.0, 1.0)
    near = EXACT * spacing
    on_lo, on_hi = np.abs(times - starts[lo]) <= near, np.abs(times - starts[hi]) <= near
    w = np.where(on_lo, 0.0, np.where(on_hi, 1.0, w))
    ok = on_lo | on_hi | ((times > starts[lo]) & (times < starts[hi]) & (gap <= 1.05 * spacing))
    out = (1.0 - w)[..., None] * vectors[lo] + w[..., None] * vectors[hi]
    return out, ok


def window_match(
    a: np.ndarray,
    b: np.ndarray,
    a_starts: np.ndarray | None = None,
    b_starts: np.ndarray | None = None,
    *,
    max_shift: float | None = None,
    step: float = SHIFT_STEP,
) -> float:
    """How alike two tracks change over time: the best, over time shifts, of the correlation
    between their paired windows' deviations from the mean of the paired windows.

    A trim moves every window by the cut, which is rarely a whole number of windows. So the
    shifts tried are every ``step`` of a window hop (and every whole-window offset), and at a
    shift each window of one track is paired with the other track's vector at that moment:
    its window starting there, or the linear blend of its two consecutive windows around it
    (a window's vector is pooled over its frames, so a window straddling two is close to
    their blend). Pairs are taken both ways, and at least half the windows (and two) of the
    track with fewer must find a partner (indexing samples at most a few windows per track,
    so some have none). Two pieces of one style resemble each other on average, so their raw
    windows match; their deviations over time do not, where a copy's follow the original's.
    ``max_shift``: the largest time shift tried in seconds (a copy trimmed by d seconds is
    shifted by at most d).
    """
    if len(a) < 2 or len(b) < 2:
        return 0.0
    sa, sb = _window_times(a_starts, len(a)), _window_times(b_starts, len(b))
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    spacing = _spacing(sa, sb)
    reach = max(sb[-1] - sa[0], sa[-1] - sb[0]) if max_shift is None else float(max_shift)
    grid = np.arange(-reach, reach + 1e-9, step * spacing) if reach > 0 else np.zeros(1)
    whole = (sb[None, :] - sa[:, None]).ravel()
    whole = whole[np.abs(whole) <= reach + 0.5 * spacing]
    shifts = np.unique(np.round(np.concatenate([grid, whole, [0.0]]), 3))
    need = 2 * max(2, (min(len(a), len(b)) + 1) // 2)  # pairs, counted both ways
    best = 0.0
    for part in np.array_split(shifts, max(1, len(shifts) // 64)):
        b_at_a, ok_a = _at_times(b, sb, sa[None, :] + part[:, None], spacing)
        a_at_b, ok_b = _at_times(a, sa, sb[None, :] - part[:, None], spacing)
        x = np.concatenate([np.broadcast_to(a, b_at_a.shape), a_at_b], axis=1)
        y = np.concatenate([b_at_a, np.broadcast_to(b, a_at_b.shape)], axis=1)
        m = np.concatenate([ok_a, ok_b], axis=1).astype(np.float32)[..., None]
        count = m.sum(axis=1)  # (S, 1)
        x = (x - (x * m).sum(axis=1, keepdims=True) / np.maximum(count, 1)[:, None]) * m
        y = (y - (y * m).sum(axis=1, keepdims=True) / np.maximum(count, 1)[:, None]) * m
        num = (x * y).sum(axis=(1, 2))
        denom = np.sqrt((x * x).sum(axis=(1, 2)) * (y * y).sum(axis=(1, 2)))
        corr = np.where((count[:, 0] >= need) & (denom > 1e-12), num / np.maximum(denom, 1e-12), 0)
        best = max(best, float(corr.max()))
    return best


#: what :func:`window_match` is: (a, b, a_starts, b_starts, *, max_shift) -> score
WindowMatcher = Callable[..., float]


def compare(
    a: TrackVectors,
    b: TrackVectors,
    *,
    matcher: WindowMatcher = window_match,
    envelopes: Envelopes | None = None,
) -> PairEvidence:
    """The evidence for one pair (``matcher``: the window comparison, for benchmarks); with
    ``envelopes``, the audio's too."""
    longer = max(a.duration, b.duration)
    ev = PairEvidence(
        a=a.id,
        b=b.id,
        track_cosine=float(np.dot(a.vector, b.vector)),
        window_match=matcher(
            a.window_vectors,
            b.window_vectors,
            a.window_starts,
            b.window_starts,
            max_shift=abs(a.duration - b.duration),
        ),  # fmt: skip
        duration_ratio=float(min(a.duration, b.duration) / longer) if longer > 0 else 1.0,
    )
    if envelopes is not None:
        ev.audio_match = audio_evidence(a, b, envelopes)
    return ev


def audio_evidence(a: TrackVectors, b: TrackVectors, envelopes: Envelopes) -> float | None:
    """The envelopes' best correlation within the length difference (None: a file unread)."""
    ea, eb = envelopes(a.path), envelopes(b.path)
    if ea is None or eb is None:
        return None
    return envelope_match(ea, eb, max_shift=abs(a.duration - b.duration))


def is_duplicate(
    ev: PairEvidence,
    *,
    track_min: float = TRACK_MIN,
    window_min: float = WINDOW_MIN,
    duration_ratio_min: float = DURATION_RATIO_MIN,
    audio_min: float = AUDIO_MIN,
) -> bool:
    """Track vectors and lengths agree, and the windows or (where measured) the audio do."""
    return (
        ev.track_cosine >= track_min
        and ev.duration_ratio >= duration_ratio_min
        and (
            ev.window_match >= window_min
            or (ev.audio_match is not None and ev.audio_match >= audio_min)
        )
    )


def find_duplicates(
    tracks: Sequence[TrackVectors],
    *,
    track_min: float = TRACK_MIN,
    window_min: float = WINDOW_MIN,
    duration_ratio_min: float = DURATION_RATIO_MIN,
    neighbours: int = NEIGHBOURS,
    chunk: int = 2048,
    audio: bool = True,
    audio_min: float = AUDIO_MIN,
    matcher: WindowMatcher = window_match,
) -> list[DuplicateGroup]:
    """Groups of two or more tracks holding one recording (largest groups first).

    Candidates are each track's ``neighbours`` nearest tracks by vector (computed in chunks),
    so the work grows as n^2 / chunk in matrix products but never holds an n x n matrix.
    ``audio``: decode the tracks of pairs the windows leave undecided and compare their
    envelopes (each file decoded once); ``matcher``: the window comparison (for benchmarks).
    """
    envelopes = Envelopes() if audio else None
    rules = {"track_min": track_min, "window_min": window_min,
             "duration_ratio_min": duration_ratio_min, "audio_min": audio_min}  # fmt: skip
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
    seen: set[tuple[int, int]] = set()
    for start in range(0, n, chunk):
        sims = matrix[start : start + chunk] @ matrix.T
        for row, i in enumerate(range(start, min(start + chunk, n))):
            sims[row, i] = -np.inf
            near = np.argsort(-sims[row], kind="stable")[:neighbours]
            for j in near.tolist():
                pair = (min(i, j), max(i, j))
                if sims[row, j] < track_min or pair in seen:
                    continue
                seen.add(pair)
                da, db = tracks[i].duration, tracks[j].duration
                if min(da, db) < duration_ratio_min * max(da, db):
                    continue  # cheap test first: the window comparison costs more
                ev = compare(tracks[i], tracks[j], matcher=matcher)
                if not is_duplicate(ev, **rules) and envelopes is not None:
                    ev.audio_match = audio_evidence(tracks[i], tracks[j], envelopes)
                if is_duplicate(ev, **rules):
                    evidence[pair] = ev
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
