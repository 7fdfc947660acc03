"""Make (or reuse) the benchmark's real multi-minute music files: deterministic, cached.

The files come from the demo corpus builder (music21 pieces, General MIDI instruments, rendered
with fluidsynth at 44.1 kHz stereo; short pieces are looped to the requested length), with the
formats taken in turn so the set mixes flac, mp3, ogg and m4a. Re-running with the same arguments
reuses finished files. The folder to index is ``<folder>/tracks``; keep ``bench/.data/`` out of git.

    .venv/bin/python bench/long_tracks.py                    # 8 x 3 min in bench/.data/long
    .venv/bin/python bench/long_tracks.py /tmp/long --tracks 10 --seconds 240
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent / ".data" / "long"
FORMATS = ("flac", "mp3", "ogg", "m4a")


def make_long_tracks(
    folder: str | Path = DEFAULT_DIR,
    *,
    n_tracks: int = 8,
    seconds: float = 180.0,
    seed: int = 0,
    formats: Sequence[str] = FORMATS,
    min_fraction: float = 0.9,
) -> list[Path]:
    """Build the tracks and return the paths of the ``n_tracks`` chosen ones (in ``folder/tracks``).

    The builder loops a short piece at most a few times, so a brisk folk song can stay under the
    requested length. ``n_tracks + 4`` pieces are rendered into ``folder/demo``; the first
    ``n_tracks`` of them (in plan order) that last at least ``min_fraction * seconds`` are
    hard-linked into ``folder/tracks``, which then holds exactly those files. Raises RuntimeError
    when too few are long enough.
    """
    from melodex.audio import probe
    from melodex.data.demo import build_demo

    folder = Path(folder)
    demo, chosen_dir = folder / "demo", folder / "tracks"
    manifest = build_demo(
        demo, n_tracks=n_tracks + 4, seconds=seconds, seed=seed, formats=tuple(formats)
    )
    rendered = [
        demo / json.loads(line)["audio"] for line in manifest.read_text().splitlines() if line
    ]
    long_enough = [p for p in rendered if probe(p).duration >= min_fraction * seconds]
    if len(long_enough) < n_tracks:
        raise RuntimeError(
            f"{demo}: only {len(long_enough)} of {len(rendered)} rendered tracks last "
            f">= {min_fraction * seconds:.0f} s; ask for fewer tracks or shorter ones"
        )
    chosen = long_enough[:n_tracks]
    chosen_dir.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in chosen}
    for old in chosen_dir.iterdir():
        if old.name not in names:
            old.unlink()
    out = []
    for src in chosen:
        dst = chosen_dir / src.name
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        out.append(dst)
    return sorted(out)


def audio_folder(folder: str | Path = DEFAULT_DIR) -> Path:
    """Where ``make_long_tracks`` puts the chosen tracks (the folder to index)."""
    return Path(folder) / "tracks"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from melodex.audio import probe

    started = time.perf_counter()
    paths = make_long_tracks(
        args.folder, n_tracks=args.tracks, seconds=args.seconds, seed=args.seed
    )
    total = 0.0
    for p in paths:
        info = probe(p)
        total += info.duration
        print(
            f"{p.name:56s} {info.duration:6.1f} s  {info.sample_rate} Hz  "
            f"{info.channels} ch  {info.codec}"
        )
    print(f"{len(paths)} files, {total / 60:.1f} min of audio in {audio_folder(args.folder)}")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
