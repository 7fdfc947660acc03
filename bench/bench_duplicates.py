"""Precision and recall of `melodex duplicates` on made variants of the demo tracks.

Every ``--every``-th demo track is copied seven ways with ffmpeg (an MP3 transcode at 96 kb/s;
trims of 4 s at the start and 2 s at the end, of 3.7 s at the start and 2.3 s at the end, and of
1.5 s at the start and 4.5 s at the end, all off melodex-base's 2.992-s window grid; one of 3 s
at the start and 3 s at the end, on the grid; a resampling to 22.05 kHz; a gain of -6 dB); each
variant is embedded with the library's model, and duplicates are searched among the 48 demo tracks
plus the variants. A true pair is a variant with its original or with another variant of it;
every other pair is distinct (the demo holds different movements, chorales and tunes of one
composer and form, the hard case). Three ways run on the same vectors in one run: ``grid`` (the
earlier window comparison: each window paired with the other track's nearest window, shifts of
whole windows; windows only), ``fractional`` (melodex.library.duplicates.window_match: shifts
every 1/8 window, blending the two windows around each moment; windows only) and ``fractional +
audio`` (what `melodex duplicates` does: pairs the windows leave undecided are decided by the
files' spectral-shape envelopes, melodex.library.audio_match). Prints, for each, pair precision and
recall, recall by kind of variant, and the evidence of true pairs against the closest distinct
pairs, with the load average.

    PYTHONPATH=src .venv/bin/python -m melodex demo --tracks 48       # builds demo-data/
    PYTHONPATH=src .venv/bin/python bench/bench_duplicates.py [--work /tmp/dups]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from melodex.library.audio_match import Envelopes  # noqa: E402
from melodex.library.duplicates import (  # noqa: E402
    TrackVectors,
    audio_evidence,
    compare,
    find_duplicates,
    window_match,
)
from melodex.library.library import Library  # noqa: E402

VARIANTS = {
    "transcode": (["-c:a", "libmp3lame", "-b:a", "96k"], ".mp3"),
    "trim": (["-ss", "4", "-t", "{keep}"], ".flac"),
    "trim-3.7s": (["-ss", "3.7", "-t", "{keep}"], ".flac"),
    "trim-1.5s": (["-ss", "1.5", "-t", "{keep}"], ".flac"),
    "trim-3s": (["-ss", "3", "-t", "{keep}"], ".flac"),
    "resample": (["-ar", "22050"], ".flac"),
    "gain": (["-af", "volume=-6dB"], ".flac"),
}


def grid_window_match(
    a: np.ndarray,
    b: np.ndarray,
    a_starts: np.ndarray | None = None,
    b_starts: np.ndarray | None = None,
    *,
    max_shift: float | None = None,
) -> float:
    """The earlier window comparison, kept as the baseline: shifts of whole windows only, each
    window paired with the other track's nearest (within half a hop), no blending."""
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
        gap = np.abs(sb[None, :] - (sa[:, None] + shift))
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


#: name -> (window comparison, whether undecided pairs are decided by the audio)
CONFIGS = {
    "grid": (grid_window_match, False),
    "fractional": (window_match, False),
    "fractional + audio": (window_match, True),
}


def make_variant(src: str, out: Path, kind: str, duration: float) -> Path:
    args, ext = VARIANTS[kind]
    args = [a.replace("{keep}", f"{duration - 6:.3f}") for a in args]  # 6 s shorter
    dest = out / f"{Path(src).stem}.{kind}{ext}"
    if not dest.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, *args, str(dest)],
            check=True,
        )
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="demo-data/library")
    ap.add_argument("--every", type=int, default=8, help="make variants of every n-th track")
    ap.add_argument("--work", default=None, help="folder for variants (kept, reused)")
    args = ap.parse_args()
    lib = Library(args.db)
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
    rows = sorted(lib.store.rows(columns=cols), key=lambda r: r["path"])
    dim = len(rows[0]["vector"])

    def tv(r: dict) -> TrackVectors:
        return TrackVectors(
            id=r["id"], path=r["path"], duration=float(r["duration"]),
            vector=np.asarray(r["vector"], np.float32),
            window_vectors=np.asarray(r["window_vectors"], np.float32).reshape(-1, dim),
            window_starts=np.asarray(r["window_starts"], np.float64),
            title=r["title"], artist=r["artist"],
        )  # fmt: skip

    tracks = [tv(r) for r in rows]
    work = Path(args.work or tempfile.mkdtemp(prefix="melodex-dups-"))
    work.mkdir(parents=True, exist_ok=True)
    originals = tracks[:: args.every]
    kind_of: dict[int, str] = {}
    origin: dict[int, int] = {t.id: t.id for t in tracks}
    t0 = time.perf_counter()
    next_id = -1
    for orig in originals:
        for kind in VARIANTS:
            path = make_variant(orig.path, work, kind, orig.duration)
            cache = path.with_suffix(path.suffix + ".npz")
            if not cache.exists():
                emb = lib.model.embed_file(path)
                np.savez(
                    cache,
                    duration=emb.duration,
                    vector=emb.vector,
                    window_vectors=emb.window_vectors,
                    window_starts=emb.window_starts,
                )
            emb = np.load(cache)
            tracks.append(
                TrackVectors(id=next_id, path=str(path), duration=float(emb["duration"]),
                             vector=emb["vector"], window_vectors=emb["window_vectors"],
                             window_starts=emb["window_starts"])
            )  # fmt: skip
            kind_of[next_id], origin[next_id] = kind, orig.id
            next_id -= 1
    embed_s = time.perf_counter() - t0
    print(f"model {lib.store.meta.get('model')}; {len(tracks) - len(kind_of)} demo tracks + "
          f"{len(kind_of)} variants of {len(originals)} of them")  # fmt: skip
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"embedding the variants: {embed_s:.1f} s")
    for name, (matcher, audio) in CONFIGS.items():
        print(f"\n== {name} ==")
        evaluate(tracks, kind_of, origin, matcher, audio)


def evaluate(
    tracks: list, kind_of: dict[int, str], origin: dict[int, int], matcher, audio: bool
) -> None:
    """Pair precision and recall of find_duplicates with one window comparison, by kind."""
    t0 = time.perf_counter()
    groups = find_duplicates(tracks, matcher=matcher, audio=audio)
    find_s = time.perf_counter() - t0
    predicted = {
        frozenset((a["id"], b["id"]))
        for g in groups
        for a, b in itertools.combinations(g.tracks, 2)
    }
    truth = {
        frozenset((a.id, b.id))
        for a, b in itertools.combinations(tracks, 2)
        if origin[a.id] == origin[b.id]
    }
    tp = len(predicted & truth)
    by_id = {t.id: t for t in tracks}
    env = Envelopes() if audio else None
    print(f"finding duplicates: {find_s * 1000:.1f} ms")
    print(f"groups: {len(groups)}; pairs predicted {len(predicted)}, true {len(truth)}, "
          f"correct {tp}")  # fmt: skip
    precision = tp / len(predicted) if predicted else 1.0
    print(f"pair precision {precision:.3f}, pair recall {tp / len(truth):.3f}")
    for kind in VARIANTS:
        ids = [i for i, k in kind_of.items() if k == kind]
        found = sum(frozenset((i, origin[i])) in predicted for i in ids)
        ev = [compare(by_id[i], by_id[origin[i]], matcher=matcher, envelopes=env) for i in ids]
        sound = [e.audio_match for e in ev if e.audio_match is not None]
        print(f"  {kind:<10} found with its original: {found}/{len(ids)}; evidence min/median: "
              f"track cosine {min(e.track_cosine for e in ev):.4f}/"
              f"{np.median([e.track_cosine for e in ev]):.4f}, window match "
              f"{min(e.window_match for e in ev):.4f}/{np.median([e.window_match for e in ev]):.4f}"
              + (f", audio match {min(sound):.4f}/{np.median(sound):.4f}" if sound else ""))  # fmt: skip
    true_ev = [compare(by_id[a], by_id[b], matcher=matcher) for a, b in (tuple(p) for p in truth)]
    demo = [t for t in tracks if t.id not in kind_of]
    distinct = [compare(a, b, matcher=matcher) for a, b in itertools.combinations(demo, 2)]
    closest = sorted(distinct, key=lambda e: -e.window_match)[:5]
    if env is not None:  # the distinct pairs that pass track cosine and length, by their audio
        close = [e for e in distinct if e.track_cosine >= 0.95 and e.duration_ratio >= 0.6]
        sound = sorted(audio_evidence(by_id[e.a], by_id[e.b], env) or 0.0 for e in close) or [0]
        print(f"distinct pairs passing track cosine and length: {len(close)}; audio match "
              f"max {sound[-1]:.4f}, median {np.median(sound):.4f}")  # fmt: skip
    print("true pairs, minimum: track cosine "
          f"{min(e.track_cosine for e in true_ev):.4f}, window match "
          f"{min(e.window_match for e in true_ev):.4f}, duration ratio "
          f"{min(e.duration_ratio for e in true_ev):.3f}")  # fmt: skip
    print("closest distinct pairs (track cosine, window match, duration ratio):")
    for e in closest:
        a, b = by_id[e.a], by_id[e.b]
        print(f"  {e.track_cosine:.4f} {e.window_match:.4f} {e.duration_ratio:.3f}  "
              f"{a.title} / {b.title}")  # fmt: skip


if __name__ == "__main__":
    main()
