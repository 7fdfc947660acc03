"""``melodex index`` through the command line, start-up and exit included, as a user runs it.

Each run is a new process indexing the same folder into a new library (default: the 10
rendered 3-minute tracks of bench/long_tracks.py, 30 min of 44.1 kHz stereo audio in flac, ogg,
mp3 and m4a). Three ways, interleaved run by run so that the machine's load falls on all alike:

- ``sampled, ordinary exit``: the CLI's ``main`` followed by the interpreter's usual teardown
  (how the installed command ended before ``melodex.quick.console``);
- ``sampled``: the installed command's path (``python -m melodex``, which skips the teardown);
- ``full``: the same with ``--coverage full`` (every window).

Prints wall p50 per way, x real time, peak RSS (GNU time, as bench_cold_cli.py) and the
targets of issue R7: sampled >= 300x and every window >= 200x real time, start-up included.

    .venv/bin/python bench/bench_cli_index.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from long_tracks import DEFAULT_DIR, audio_folder, make_long_tracks  # noqa: E402

from melodex.audio import probe  # noqa: E402

TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
ORDINARY = "from melodex.quick import main; main()"  # ends through the interpreter's teardown
WAYS = {
    "sampled, ordinary exit": (["-c", ORDINARY], []),
    "sampled": (["-m", "melodex"], []),
    "full (every window)": (["-m", "melodex"], ["--coverage", "full"]),
}
TARGETS = {"sampled": 300.0, "full (every window)": 200.0}


def run_once(folder: Path, launcher: list[str], extra: list[str]) -> tuple[float, float]:
    """One new process indexing ``folder`` into a new library: (wall s, peak RSS MB)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an install has its bytecode compiled
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, *launcher, "index", str(folder), "--db", f"{tmp}/db", *extra]
        rss_file = Path(tmp) / "rss"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-f", "%M", "-o", str(rss_file), *cmd], env=env, capture_output=True
        )
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"index failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
        rss_kb = float(rss_file.read_text().split()[-1])
    return wall, rss_kb / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR, help="cache folder of the tracks")
    ap.add_argument("--tracks", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-full", action="store_true", help="leave out the every-window runs")
    args = ap.parse_args(argv)

    paths = make_long_tracks(args.data, n_tracks=args.tracks, seconds=args.seconds)
    folder = audio_folder(args.data)
    audio_s = sum(probe(p).duration for p in paths)
    ways = {k: v for k, v in WAYS.items() if not (args.skip_full and k.startswith("full"))}
    print(
        f"{len(paths)} rendered tracks in {folder}, {audio_s / 60:.1f} min of audio; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
    )
    for launcher, extra in ways.values():  # warm the file cache and the bytecode
        run_once(folder, launcher, extra)
    walls: dict[str, list[float]] = {k: [] for k in ways}
    rss: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.runs):
        for name, (launcher, extra) in ways.items():
            wall, mb = run_once(folder, launcher, extra)
            walls[name].append(wall)
            rss[name].append(mb)
    p50 = {k: float(np.median(v)) for k, v in walls.items()}
    base = p50["sampled, ordinary exit"]
    for name in ways:
        ratio = f"  {base / p50[name]:.2f}x the ordinary exit" if name == "sampled" else ""
        print(
            f"{name:<24} p50 {p50[name]:5.2f} s (runs {min(walls[name]):.2f}-"
            f"{max(walls[name]):.2f})  {audio_s / p50[name]:5.0f}x real time  "
            f"peak RSS {max(rss[name]):4.0f} MB{ratio}"
        )
    print(f"load average now {os.getloadavg()[0]:.1f}")
    for name, target in TARGETS.items():
        if name in p50:
            factor = audio_s / p50[name]
            verdict = "PASS" if factor >= target else "FAIL"
            print(f"  {verdict}  {name} >= {target:.0f}x real time: {factor:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
