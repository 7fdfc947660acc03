"""Throughput of the musicnn port on this machine: mel front-end and net, per tagger.

    .venv/bin/python bench/bench_musicnn.py [--taggers MTT_musicnn MSD_musicnn] [--seconds 3]

Prints windows/s and x-real-time (one window = WINDOW_SAMPLES samples = 2.992 s of 16 kHz audio).
Figures depend on machine load; run it on an idle machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from melodex.encoders.musicnn import (
    MUSICNN_SR,
    N_FRAMES,
    WINDOW_SAMPLES,
    MusicnnTagger,
    _log_mel_batch,
)

WINDOW_SECONDS = WINDOW_SAMPLES / MUSICNN_SR


def rate(fn, n_items: int, min_seconds: float) -> float:
    """Items per second of ``fn`` (called repeatedly for at least ``min_seconds``)."""
    fn()  # warm-up (oneDNN primitive creation)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * n_items / elapsed


def report(label: str, windows_per_s: float) -> None:
    print(
        f"{label:<34} {windows_per_s:8.1f} windows/s  "
        f"{windows_per_s * WINDOW_SECONDS:7.1f}x real time"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taggers", nargs="+", default=["MTT_musicnn", "MSD_musicnn"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per figure")
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.standard_normal((32, WINDOW_SAMPLES))).astype(np.float32)
    with torch.inference_mode():
        for bs in args.batch_sizes:
            chunk = torch.from_numpy(windows[:bs])
            report(
                f"mel front-end, batch {bs}",
                rate(lambda c=chunk: _log_mel_batch(c), bs, args.seconds),
            )
        mel = _log_mel_batch(torch.from_numpy(windows))[:, :N_FRAMES].contiguous()
        for name in args.taggers:
            tagger = MusicnnTagger.from_pretrained(name)
            for bs in args.batch_sizes:
                x = mel[:bs]
                report(
                    f"{name} net, batch {bs}", rate(lambda x=x, t=tagger: t(x), bs, args.seconds)
                )
            report(
                f"{name} tag_windows, batch 32",
                rate(lambda t=tagger: t.tag_windows(windows), 32, args.seconds),
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
