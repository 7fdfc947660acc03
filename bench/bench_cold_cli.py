"""Cold ``melodex search``: a new process per query, today's full path against the cold path.

Builds (once) a synthetic library of N tracks (default 10k; vectors shaped like the default
model's, 8 windows a track, realistic metadata: bench/million_data.py) bound to melodex-base,
writes its search snapshot, then runs ``python -m melodex search TEXT --db DB --json`` in new
processes and prints wall-time p50/p99 and peak RSS of each:

- ``full``: ``MELODEX_NO_SNAPSHOT=1``, the path every search took before (the Typer CLI,
  torch, sentence-transformers, LanceDB);
- ``cold, new text``: the entry point's plain-search parser (melodex.quick), the snapshot and
  the numpy text tower, for a text never seen (the encoder loads);
- ``cold, cached text``: the same text again (the query cache answers; no encoder load).

It also checks that both paths print the same hits (ids and order; the largest score gap).
The file cache is warm (each path runs once before timing); the library is synthetic.

    PYTHONPATH=src .venv/bin/python bench/bench_cold_cli.py --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from bench_search import GENRES, MOODS  # noqa: E402
from million_data import RowMaker  # noqa: E402

from melodex.library.snapshot import write_snapshot  # noqa: E402
from melodex.library.store import Store  # noqa: E402
from melodex.models.query_fast import fast_query_encoder  # noqa: E402

TARGET_P50_S = 1.0
TARGET_RSS_MB = 400.0
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)


def build(db: Path, n: int) -> None:
    """A library of n synthetic tracks bound to melodex-base (kept if it already holds n)."""
    encoder = fast_query_encoder("melodex-base")
    assert encoder is not None
    store = Store(db, create=True)
    if len(store) == n:
        write_snapshot(store)
        return
    if len(store):
        raise SystemExit(f"{db} holds {len(store)} tracks, not {n}; use another --db")
    config = encoder.config
    store.bind_model(encoder.identity, config.name, config.dim, source="melodex-base")
    maker = RowMaker(dim=config.dim, n_tags=config.dim, n_clusters=max(8, n // 50), windows=8)
    with store.writing():
        for start in range(0, n, 2000):
            store.upsert(maker.track_rows(start, min(n, start + 2000)))
        store.compact()
    write_snapshot(store)


def spawn(db: Path, text: str, *, full: bool) -> tuple[float, float, list[dict]]:
    """One new ``python -m melodex search`` process: (wall seconds, its peak RSS MB, hits).

    The RSS comes from /usr/bin/time (a small process that forks the search): a child forked
    straight from this process would count this process's memory in its peak (Linux carries
    ``maxrss`` across fork and exec).
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MELODEX_NO_SNAPSHOT", None)
    # An installed melodex has its bytecode compiled (pip does it); a shell that sets
    # PYTHONDONTWRITEBYTECODE would make every run compile ~20 melodex modules (~0.1 s):
    # the warm-up spawns write the .pyc files, as an install would.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if full:
        env["MELODEX_NO_SNAPSHOT"] = "1"
    cmd = [sys.executable, "-m", "melodex", "search", text, "--db", str(db), "--json", "-k", "10"]
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-f", "%M", "-o", str(rss_file), *cmd], env=env, capture_output=True
        )
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"search failed ({proc.returncode}): {proc.stderr.decode()}")
        rss_kb = float(rss_file.read_text().split()[-1])
    return wall, rss_kb / 1024, json.loads(proc.stdout)


def summary(name: str, walls: list[float], rss: list[float], base: float | None) -> float:
    p50, p99 = np.percentile(walls, [50, 99])
    ratio = f"  {base / p50:5.1f}x faster than full" if base else ""
    print(
        f"{name:<20} p50 {p50:5.2f} s  p99 {p99:5.2f} s  peak RSS {max(rss):6.0f} MB "
        f"(n={len(walls)}){ratio}"
    )
    return float(p50)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--db", type=Path, default=None, help="kept between runs when given")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "lib"
        t0 = time.perf_counter()
        build(db, args.tracks)
        print(
            f"synthetic library: {args.tracks:,} tracks in {db} ({time.perf_counter() - t0:.1f} s)"
        )
        texts = [f"{m} {g}" for m in MOODS for g in GENRES]
        rng = np.random.default_rng(int(time.time()))
        texts = [texts[i] for i in rng.permutation(len(texts))]
        spawn(db, "warm the file cache", full=True)
        spawn(db, "warm the file cache", full=False)
        print(f"load average before: {os.getloadavg()}")
        full, new, cached = ([], []), ([], []), ([], [])
        worst_gap, same = 0.0, True
        for i in range(args.runs):
            text = texts[i]
            wall, rss, ref = spawn(db, text, full=True)
            full[0].append(wall), full[1].append(rss)
            wall, rss, got = spawn(db, text, full=False)
            new[0].append(wall), new[1].append(rss)
            wall, rss, again = spawn(db, text, full=False)
            cached[0].append(wall), cached[1].append(rss)
            same &= [h["id"] for h in ref] == [h["id"] for h in got] == [h["id"] for h in again]
            same &= all(
                a["segment_start"] == b["segment_start"] for a, b in zip(ref, got, strict=True)
            )
            for a, b in zip(ref, got, strict=True):
                worst_gap = max(worst_gap, abs(a["score"] - b["score"]))
        floor = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import numpy"], check=True)
            floor.append(time.perf_counter() - t0)
        print(f"load average after:  {os.getloadavg()}")
        base = summary("full (today)", *full, None)
        p50 = summary("cold, new text", *new, base)
        summary("cold, cached text", *cached, base)
        print(f"floor: a new python that imports numpy, p50 {np.percentile(floor, 50):.2f} s")
        print(
            f"same hits (ids, order, segment): {same}; largest score gap {worst_gap:.2e}; "
            f"target p50 <= {TARGET_P50_S} s: {'met' if p50 <= TARGET_P50_S else 'NOT met'}; "
            f"RSS <= {TARGET_RSS_MB:.0f} MB: {'met' if max(new[1]) <= TARGET_RSS_MB else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
