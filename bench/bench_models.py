"""Index speed of the pretrained families on this machine, against melodex-base in the same run.

Random weights at the released sizes (speed does not depend on the values), synthetic audio
(noisy tones): the figures are labelled synthetic. Each model embeds the same tracks through
``encode_audio(..., max_windows=None)`` (every window, its own sample rate and window rule,
decode excluded: the waveforms are made at each model's rate beforehand).

    PYTHONPATH=src .venv/bin/python bench/bench_models.py [--tracks 3] [--seconds 30]

- ``clap-hf``: a transformers ClapModel from the default ``ClapConfig`` (HTSAT-tiny 96/768,
  depths 2-2-6-2; RoBERTa-base text tower) with the processor's feature extractor;
- ``laion-clap``: the same network through melodex's LAION adapter (16-bit rounding and its
  torch log-mel front end instead of transformers' numpy one).

Prints the load average before and after: figures from a loaded machine are slower.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.clap_fixtures builds the random CLAP folder

from melodex.models import load_model  # noqa: E402


def tracks(n: int, seconds: float, sr: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        t = np.arange(int(seconds * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t) + 0.05 * rng.standard_normal(len(t))
        out.append(y.astype(np.float32))
    return out


def measure(model, n: int, seconds: float, *, repeats: int) -> float:  # noqa: ANN001
    """Seconds of audio embedded per wall-clock second (x real time), best of ``repeats``."""
    audio = tracks(n, seconds, model.sample_rate)
    model.encode_audio(audio[:1], max_windows=None)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.encode_audio(audio, batch_size=n, max_windows=None)
        best = min(best, time.perf_counter() - start)
    return n * seconds / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; synthetic audio, "
        f"{args.tracks} tracks x {args.seconds:.0f} s, every window"
    )
    from melodex.models.laion_clap import LaionClap
    from tests.clap_fixtures import make_clap_folder

    rows = []
    base = load_model("melodex-base")
    rows.append(("melodex-base", base, 0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_clap_folder(Path(tmp) / "clap-random", tiny=False)
        clap = load_model(f"clap-hf:{folder}")
        laion = LaionClap(clap.model, clap.processor, name="laion-clap:random", licence=None)
        rows += [("clap-hf (random, released size)", clap, 0), ("laion-clap (same net)", laion, 0)]
        results = []
        for label, model, _ in rows:
            speed = measure(model, args.tracks, args.seconds, repeats=args.repeats)
            results.append((label, model, speed))
    ref = results[0][2]
    for label, model, speed in results:
        params = getattr(getattr(model, "model", None), "num_parameters", lambda: None)()
        size = f"{params / 1e6:6.1f}M params" if params else " " * 13
        print(
            f"{label:<34} {model.dim:>5}-d {model.sample_rate:>6} Hz {size}  "
            f"{speed:7.1f}x real time  ({speed / ref:.2f}x melodex-base)"
        )
    print(f"load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
