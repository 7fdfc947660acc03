"""Benchmark the Ray indexer against the single-process one, on the same real music files.

In one process, on the same files (real multi-minute music from ``long_tracks.py``):

  (a) serial work: decode + embed each file in this process, torch on one thread as in a Ray
      worker (no store): the per-track cost any indexer pays, and how many cores it keeps busy;
  (b) the single-process indexer as shipped (decoding ahead in a thread, the model on the
      other core) into a fresh library;
  (c) the Ray indexer on a local cluster with 1 worker, then with 2 workers; each cluster is
      started once, indexed into a fresh library cold (workers load the model) and then warm.

Timed runs are repeated (``--repeats``) and the best kept, since other work on the machine
only ever adds time.

Figures: tracks/s and real-time factor of each; scaling from 1 to 2 workers (warm); Ray's
per-track overhead, (c, 1 worker, warm) minus (a), per track; cluster start-up time. On a 2-core
machine 2 workers is the ceiling, and the single-process indexer already overlaps decoding with
the model, so the interesting numbers are the overhead and the 1 -> 2 scaling.

    .venv/bin/python bench/bench_ray.py                       # 16 tracks of 1 min
    .venv/bin/python bench/bench_ray.py --tracks 8 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from long_tracks import audio_folder, make_long_tracks  # noqa: E402

import melodex  # noqa: E402
from melodex.library.distributed import index_folder_ray, ray_cluster  # noqa: E402
from melodex.library.indexer import _decode, embed_item, index_folder, scan_folder  # noqa: E402
from melodex.library.store import Store  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data" / "ray"


def serial_work(model: melodex.JointModel, paths: list[str]) -> tuple[float, float]:
    """(wall seconds, cores busy) to decode and embed every file, one after the other, with
    torch on one thread as in a Ray worker (the model's two taggers still run side by side)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        for path in paths:
            item = _decode(path, model.config.sample_rate)
            embed_item(model, item)
        wall = time.perf_counter() - t0
        return wall, (time.process_time() - cpu0) / wall
    finally:
        torch.set_num_threads(before)


def single_process(model: melodex.JointModel, folder: Path) -> float:
    """Seconds for the single-process indexer to fill a fresh library."""
    with tempfile.TemporaryDirectory() as tmp:
        return index_folder(Store(Path(tmp) / "db", create=True), model, folder).wall_seconds


def ray_runs(
    model: melodex.JointModel, folder: Path, workers: int, repeats: int
) -> tuple[float, float, float]:
    """(cluster start, cold run, best warm run) seconds on a local cluster of ``workers`` CPUs."""
    t0 = time.perf_counter()
    with ray_cluster(None, workers):  # started once; the indexer uses the running cluster
        start = time.perf_counter() - t0
        times = []
        for _ in range(1 + repeats):
            with tempfile.TemporaryDirectory() as tmp:
                report = index_folder_ray(Store(Path(tmp) / "db", create=True), model, folder)
                assert not report.failed, report.failed
                times.append(report.wall_seconds)
    return start, times[0], min(times[1:])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each (best is kept)")
    args = ap.parse_args(argv)

    make_long_tracks(args.data, n_tracks=args.tracks, seconds=args.seconds)
    folder = audio_folder(args.data)
    paths, _ = scan_folder(folder)
    n = len(paths)
    audio = args.seconds * n
    print(f"{n} tracks x {args.seconds:g} s in {folder}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    model = melodex.load_model()
    serial_work(model, paths[:1])  # warm-up: first-call costs out of the figures
    serial, busy = min(serial_work(model, paths) for _ in range(args.repeats))
    single = min(single_process(model, folder) for _ in range(args.repeats))

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<42} {seconds:7.2f} s  {n / seconds:6.2f} tracks/s  "
              f"{audio / seconds:6.0f}x real time")  # fmt: skip

    line("(a) serial decode+embed, torch 1 thread", serial)
    print(f"      (a) keeps {busy:.2f} of {os.cpu_count()} cores busy (CPU time / wall time)")
    line("(b) single-process indexer", single)
    results = {}
    for workers in (1, 2):
        start, cold, warm = ray_runs(model, folder, workers, args.repeats)
        results[workers] = warm
        print(f"  ray, {workers} worker(s): cluster start {start:.1f} s")
        line(f"(c) ray {workers} worker(s), cold (model load)", cold)
        line(f"(c) ray {workers} worker(s), warm", warm)
    overhead_ms = (results[1] - serial) / n * 1000
    print(f"scaling 1 -> 2 workers (warm): {results[1] / results[2]:.2f}x")
    print(f"ray per-track overhead vs serial work (1 worker, warm): {overhead_ms:+.0f} ms/track "
          f"({(results[1] / serial - 1) * 100:+.1f} %)")  # fmt: skip
    print(f"ray 2 workers vs single-process indexer: {single / results[2]:.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
