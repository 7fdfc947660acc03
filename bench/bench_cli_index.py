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
import json
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


def run_once(folder: Path, launcher: list[str], extra: list[str]) -> dict[str, float]:
    """One new process indexing ``folder`` into a new library: wall s, peak RSS MB, and when
    the run's first and last phases (``--events``: planned, finished) reached this process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an install has its bytecode compiled
    seen: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, *launcher, "index", str(folder), "--db", f"{tmp}/db", "--events"]
        rss_file = Path(tmp) / "rss"
        t0 = time.perf_counter()
        with subprocess.Popen(
            [TIME, "-f", "%M", "-o", str(rss_file), *cmd, *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stderr is not None
            tail = []
            for line in proc.stderr:
                tail = [*tail[-20:], line]
                if line.startswith("{"):
                    kind = json.loads(line).get("event")
                    if kind in ("planned", "finished"):
                        seen[kind] = time.perf_counter() - t0
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"index failed ({proc.returncode}): {''.join(tail)}")
        rss_kb = float(rss_file.read_text().split()[-1])
    return {
        "wall": wall,
        "rss": rss_kb / 1024,
        "start": seen.get("planned", float("nan")),
        "end": wall - seen.get("finished", float("nan")),
    }


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
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in ways}
    for _ in range(args.runs):
        for name, (launcher, extra) in ways.items():
            runs[name].append(run_once(folder, launcher, extra))
    p50 = {k: float(np.median([r["wall"] for r in v])) for k, v in runs.items()}
    base = p50["sampled, ordinary exit"]
    for name in ways:
        walls = [r["wall"] for r in runs[name]]
        ratio = f"  {base / p50[name]:.2f}x the ordinary exit" if name == "sampled" else ""
        print(
            f"{name:<24} p50 {p50[name]:5.2f} s (runs {min(walls):.2f}-{max(walls):.2f})  "
            f"{audio_s / p50[name]:5.0f}x real time  peak RSS "
            f"{max(r['rss'] for r in runs[name]):4.0f} MB{ratio}"
        )
        start = np.median([r["start"] for r in runs[name]])
        end = np.median([r["end"] for r in runs[name]])
        print(
            f"{'':<24} start-up to the plan {start:4.2f} s, the run {p50[name] - start - end:5.2f}"
            f" s, from its end to exit {end:4.2f} s (p50s)"
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
