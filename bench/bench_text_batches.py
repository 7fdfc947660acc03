"""The numpy text tower on a mixed-length batch: one padded batch against length batches.

Eleven short queries and one long text (~256 tokens): padded as one batch, every query pays
for 256 tokens; ``NumpyMiniLM.encode`` batches texts of similar token counts instead
(minilm_numpy.length_batches). Prints the time of each (best of ``--repeat``), the ratio, and
the largest difference between the two results (float rounding only).

    .venv/bin/python bench/bench_text_batches.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from melodex.encoders.minilm_numpy import NumpyMiniLM, _blas_threads


def texts(short: int, seed: int = 0) -> list[str]:
    words = [
        "calm",
        "loud",
        "piano",
        "drums",
        "female",
        "vocal",
        "night",
        "dance",
        "sad",
        "guitar",
        "strings",
        "choir",
    ]
    rng = np.random.default_rng(seed)
    out = [" ".join(rng.choice(words, int(rng.integers(2, 9)))) for _ in range(short)]
    out.insert(short // 2, " ".join(rng.choice(words, 400)))  # truncated to 256 tokens
    return out


def best(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=11, help="Short texts beside the long one.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = NumpyMiniLM("all-MiniLM-L6-v2")
    items = texts(args.short)
    lengths = [len(e.ids) for e in model._encodings(items)]  # noqa: SLF001

    def one_batch() -> np.ndarray:  # the encoder before length batches: all padded together
        with _blas_threads(1):
            return model._forward(*model.tokenize(items))  # noqa: SLF001

    old, new = one_batch(), model.encode(items)
    t_old = best(one_batch, args.repeat)
    t_new = best(lambda: model.encode(items), args.repeat)
    print(
        f"{len(items)} texts, tokens {min(lengths)}-{max(lengths)}; load {os.getloadavg()}\n"
        f"one padded batch   {t_old * 1e3:8.1f} ms\n"
        f"length batches     {t_new * 1e3:8.1f} ms  ({t_old / t_new:.1f}x faster)\n"
        f"largest difference {np.abs(old - new).max():.2e}"
    )


if __name__ == "__main__":
    main()
