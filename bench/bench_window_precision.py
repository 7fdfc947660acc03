"""What storing window vectors as float16 would change: moments and duplicate evidence.

The million-track table is 3.7 GB, 2.9 GB of it window vectors in float32; float16 would halve
them. This indexes a folder with every window (``--coverage full``), rounds the stored window
vectors to float16 and back, and compares what reads them:

- moments ("where in the track"): per text query and track, is the best window the same, are
  the top three in the same order, and the largest score change;
- duplicate evidence: ``window_match`` for every pair of tracks and for each track against a
  copy trimmed by one window, the largest change.

Then what lossless compression would give instead (the same bits back).

    .venv/bin/python bench/long_tracks.py /tmp/long --tracks 10   # or any folder of music
    .venv/bin/python bench/bench_window_precision.py --folder bench/.data/long/tracks
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from bench_search import text_queries  # noqa: E402

import melodex  # noqa: E402
from melodex.library.duplicates import window_match  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("bench/.data/long/tracks"))
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    lib = melodex.Library(Path(tempfile.mkdtemp()) / "lib")
    t0 = time.perf_counter()
    lib.index(args.folder, coverage="full")
    print(f"indexed {args.folder} with every window in {time.perf_counter() - t0:.1f} s "
          f"(load {os.getloadavg()[0]:.1f})")  # fmt: skip
    rows = lib.store.rows(columns=["vector", "window_vectors"])
    w32 = [np.asarray(r["window_vectors"], np.float32).reshape(-1, len(r["vector"])) for r in rows]
    w16 = [w.astype(np.float16).astype(np.float32) for w in w32]
    print(f"{len(w32)} tracks, {sum(map(len, w32))} windows; largest element change "
          f"{max(float(np.abs(a - b).max()) for a, b in zip(w32, w16, strict=True)):.2e}")  # fmt: skip
    same_best = same_top3 = total = 0
    worst = 0.0
    for q in lib.model.encode_text(text_queries(args.queries, 3)):
        for a, b in zip(w32, w16, strict=True):
            sa, sb = a @ q, b @ q
            worst = max(worst, float(np.abs(sa - sb).max()))
            oa, ob = np.argsort(-sa, kind="stable"), np.argsort(-sb, kind="stable")
            same_best += int(oa[0] == ob[0])
            same_top3 += int((oa[:3] == ob[:3]).all())
            total += 1
    print(f"moments: best window unchanged {same_best}/{total}, top three in the same order "
          f"{same_top3}/{total}, largest score change {worst:.2e}")  # fmt: skip
    pairs = [abs(window_match(w32[i], w32[j]) - window_match(w16[i], w16[j]))
             for i, j in itertools.combinations(range(len(w32)), 2)]  # fmt: skip
    trims = [
        abs(window_match(a, a[1:]) - window_match(b, b[1:])) for a, b in zip(w32, w16, strict=True)
    ]
    print(f"window_match: largest change {max(pairs):.2e} over {len(pairs)} pairs, "
          f"{max(trims):.2e} against copies trimmed by one window")  # fmt: skip
    lossless(np.concatenate(w32))


def lossless(windows: np.ndarray) -> None:
    """How small the float32 windows get without changing a bit: zstd, and zstd after byte
    stream split (the exponent bytes side by side), through Parquet's encoders as a stand-in
    for Lance's (``lance-encoding:compression`` / ``bss``, file format 2.1)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.table({"w": pa.array(windows.ravel())})
    for label, encoding in (("zstd", None), ("byte stream split + zstd", "BYTE_STREAM_SPLIT")):
        buf = io.BytesIO()
        pq.write_table(
            column, buf, compression="zstd", compression_level=9, use_dictionary=False,
            column_encoding={"w": encoding} if encoding else None,
        )  # fmt: skip
        print(f"lossless, {label}: {len(buf.getvalue()) / windows.nbytes:.3f} of the raw bytes")


if __name__ == "__main__":
    main()
