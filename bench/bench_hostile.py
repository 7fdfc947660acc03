"""How long the indexer spends on hostile files: header sniffing against reading them whole.

Writes the hostile corpus of the test suite (tests/hostile_audio.py) and a sparse file of zeros
with a ``fLaC`` header, then times the indexer's per-file step (``_decode``) on each, and, as
the baseline in the same process, what the old order cost before any check: hashing the whole
sparse file. Prints seconds per file and the ratio, with the machine's load average.

    .venv/bin/python bench/bench_hostile.py --gigabytes 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the corpus
from melodex.library.indexer import _decode, file_hash  # noqa: E402
from tests import hostile_audio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0, help="size of the sparse file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="melodex-hostile-") as tmp:
        folder = Path(tmp) / "music"
        good, bad = hostile_audio.build(folder)
        big = hostile_audio.sparse_file(folder / "plausible.flac", int(args.gigabytes * 2**30))
        with open(big, "r+b") as f:
            f.write(b"fLaC")
        times = {}
        for path in sorted(bad | {str(big)}):
            started = time.perf_counter()
            item = _decode(path, 16000)
            times[Path(path).name] = time.perf_counter() - started
            assert item.error is not None, path
        started = time.perf_counter()
        file_hash(str(big))
        hashed = time.perf_counter() - started
    print(f"load average (1 min) {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    for name, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds * 1000:8.1f} ms  {name}")
    slowest = max(times.values())
    print(
        f"slowest refusal {slowest * 1000:.1f} ms; hashing the {args.gigabytes:g} GB sparse file "
        f"whole (the old first step) {hashed:.1f} s: {hashed / slowest:.0f}x longer"
    )


if __name__ == "__main__":
    main()
