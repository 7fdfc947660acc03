"""Benchmark indexing speed on real multi-minute music files; prints figures for the README.

On the same files, in one process, after a warm-up:

  (a) decode + resample alone to 16 kHz (``melodex.audio.load_audio``);
  (b) the default indexer end to end into a fresh library (``melodex.Library(tmp).index(folder)``),
      once as written (the model loaded inside) and once with the model already loaded;
  (c) the same with every window (``model.config.max_windows = None``);
  (d) a CLAP-style indexer (``clap_indexer.py``: 48 kHz, every 10-s window, HTSAT tower).

Then a per-track breakdown of melodex's indexing: decode, content hash, tag read, mel front-end,
tagger nets, pooling, store write (each piece timed directly; there is no text side).
Targets on a 2-core machine: (b) >= 200x real time and <= 2x the cost of (a); (b) >= 5x (d).

    .venv/bin/python bench/bench_indexing.py                       # 8 tracks of 3 min
    .venv/bin/python bench/bench_indexing.py --tracks 10 --clap-tracks 3
    .venv/bin/python bench/bench_indexing.py --skip-clap --max-windows 4
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from long_tracks import DEFAULT_DIR, audio_folder, make_long_tracks  # noqa: E402

import melodex  # noqa: E402
from melodex.audio import frame_windows, load_audio, probe, read_tags, select_windows  # noqa: E402

DECODE_SR = 16000


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def row(label: str, audio_s: float, wall_s: float, note: str = "") -> None:
    xrt = audio_s / wall_s if wall_s > 0 else float("inf")
    print(f"  {label:44s} {wall_s:8.2f} s  {xrt:8.1f}x  {note}")


# ------------------------------------------------------------------------------ measurements


def bench_decode(paths: Sequence[Path]) -> tuple[float, float, dict[str, list[float]]]:
    """(audio seconds, wall seconds, per-format wall seconds per file) for load_audio at 16 kHz."""
    audio_s = wall_s = 0.0
    per_format: dict[str, list[float]] = {}
    for p in paths:
        y, dt = timed(lambda p=p: load_audio(p, sr=DECODE_SR))
        audio_s += len(y) / DECODE_SR
        wall_s += dt
        per_format.setdefault(p.suffix.lstrip("."), []).append(dt)
    return audio_s, wall_s, per_format


def bench_library(folder: Path, model: Any | None) -> tuple[float, float, Any]:
    """Index ``folder`` into a fresh temporary library; (audio seconds, wall seconds, report)."""
    with tempfile.TemporaryDirectory(prefix="melodex-bench-") as tmp:
        t0 = time.perf_counter()
        lib = melodex.Library(Path(tmp) / "lib", model=model)
        report = lib.index(folder)
        wall = time.perf_counter() - t0
    if report.failed:
        raise RuntimeError(f"indexing failed on {report.failed}")
    return report.audio_seconds, wall, report


def breakdown(paths: Sequence[Path], model: Any, max_windows: int | None) -> dict[str, float]:
    """Per-piece wall seconds summed over ``paths``: what one index run spends on each step."""
    from melodex.encoders.musicnn import WINDOW_SAMPLES, window_log_mels
    from melodex.library.indexer import file_hash
    from melodex.library.store import Store, TrackRow, track_id
    from melodex.models.zero_shot import TaggerBank

    bank = TaggerBank(model.config.options["taggers"])
    t: dict[str, float] = dict.fromkeys(
        ["decode", "hash", "tags", "mel", "nets", "embed_waveform", "store"], 0.0
    )
    n_windows = 0
    rows = []
    for p in paths:
        st = os.stat(p)
        digest, dt = timed(lambda p=p: file_hash(str(p)))
        t["hash"] += dt
        tags, dt = timed(lambda p=p: read_tags(p))
        t["tags"] += dt
        y, dt = timed(lambda p=p: load_audio(p, sr=DECODE_SR))
        t["decode"] += dt
        windows = frame_windows(y, window=WINDOW_SAMPLES)
        chosen = windows[select_windows(len(windows), max_windows=max_windows)]
        n_windows += len(chosen)
        with torch.inference_mode():
            patches, dt = timed(lambda c=chosen: window_log_mels(c))
            t["mel"] += dt
            _, dt = timed(lambda x=patches: [tagger(x) for tagger in bank.taggers])
            t["nets"] += dt
        emb, dt = timed(lambda y=y: model.embed_waveform(y, max_windows=max_windows))
        t["embed_waveform"] += dt
        rows.append(
            TrackRow(
                id=track_id(str(p)),
                path=str(p),
                content_hash=digest,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                duration=float(emb.duration),
                title=tags.get("title"),
                artist=tags.get("artist"),
                album=tags.get("album"),
                genre=tags.get("genre"),
                vector=emb.vector,
                window_vectors=emb.window_vectors,
                window_starts=emb.window_starts,
                tag_scores=emb.tag_scores,
            )
        )
    with tempfile.TemporaryDirectory(prefix="melodex-bench-store-") as tmp:
        t0 = time.perf_counter()
        store = Store(Path(tmp) / "lib", create=True)
        store.bind_model(model.identity, model.config.name, model.dim)
        with store.writing():
            store.file_states()
            for start in range(0, len(rows), 16):  # the indexer commits every 16 rows
                store.upsert(rows[start : start + 16])
            store.compact()
        t["store"] = time.perf_counter() - t0
    t["windows"] = float(n_windows)
    return t


def print_breakdown(title: str, t: dict[str, float], n_tracks: int, audio_s: float) -> None:
    print(f"\n{title}  ({int(t['windows'])} windows of 3 s over {n_tracks} tracks)")
    print(f"  {'step':30s} {'per track':>10s} {'share':>7s}")
    pooling = max(0.0, t["embed_waveform"] - t["mel"] - t["nets"])
    steps = [
        ("decode + resample to 16 kHz", t["decode"]),
        ("content hash (BLAKE2b)", t["hash"]),
        ("tag read (mutagen)", t["tags"]),
        ("mel front-end", t["mel"]),
        ("tagger nets", t["nets"]),
        ("pooling / projection (rest)", pooling),
        ("text side", 0.0),
        ("store writes (LanceDB + compact)", t["store"]),
    ]
    total = sum(s for _, s in steps)
    for name, s in steps:
        print(f"  {name:30s} {1e3 * s / n_tracks:8.0f} ms {100 * s / total:6.1f}%")
    print(
        f"  {'sum (serial)':30s} {1e3 * total / n_tracks:8.0f} ms  -> {audio_s / total:.0f}x real "
        f"time if nothing overlapped; mel+nets per window "
        f"{1e3 * (t['mel'] + t['nets']) / max(t['windows'], 1):.0f} ms"
    )


# ------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR, help="cache folder of the tracks")
    parser.add_argument("--tracks", type=int, default=8, help="number of multi-minute tracks")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of each track")
    parser.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="windows per track for run (b) (default: the model's config)",
    )
    parser.add_argument("--skip-all-windows", action="store_true", help="skip run (c)")
    parser.add_argument("--skip-clap", action="store_true", help="skip run (d)")
    parser.add_argument(
        "--clap-tracks",
        type=int,
        default=None,
        help="run (d) on only the first N tracks (it is slow); default all",
    )
    parser.add_argument("--skip-breakdown", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(
        f"machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}"
    )

    load = os.getloadavg()[0]
    print(
        f"load average (1 min) {load:.1f} on {os.cpu_count()} cores"
        + (
            "  -- the machine is busy: absolute figures will be low, ratios hold better"
            if load > 0.5 * (os.cpu_count() or 1)
            else ""
        )
    )
    paths = make_long_tracks(args.data, n_tracks=args.tracks, seconds=args.seconds)
    folder = audio_folder(args.data)
    total_s = sum(probe(p).duration for p in paths)
    formats = sorted({p.suffix.lstrip(".") for p in paths})
    print(
        f"data: {len(paths)} tracks in {folder}, {total_s / 60:.1f} min, 44.1 kHz stereo, "
        f"formats {', '.join(formats)}"
    )

    # warm-up: imports, model load, torch kernels, the OS page cache for every file
    model, load_s = timed(melodex.load_model)
    default_windows = model.config.max_windows
    run_windows = default_windows if args.max_windows is None else args.max_windows
    for p in paths:
        p.read_bytes()
    model.embed_waveform(load_audio(paths[0], sr=DECODE_SR, duration=30.0), max_windows=None)
    print(
        f"model: {model.config.name} (taggers {', '.join(model.config.options['taggers'])}), "
        f"loaded in {load_s:.2f} s; max_windows default {default_windows}, run (b) {run_windows}"
    )

    print(f"\n  {'run':44s} {'wall':>10s} {'x real':>9s}")
    dec_audio, dec_wall, per_format = bench_decode(paths)
    row("(a) decode + resample to 16 kHz", dec_audio, dec_wall)
    dec_xrt = dec_audio / dec_wall

    model.config.max_windows = run_windows
    try:
        if args.max_windows is None:
            audio_b0, wall_b0, _ = bench_library(folder, None)
            row(
                f"(b) Library(tmp).index(folder), max_windows={run_windows}",
                audio_b0,
                wall_b0,
                f"{wall_b0 / dec_wall:.2f}x decode cost  (includes load_model)",
            )
        audio_b, wall_b, report = bench_library(folder, model)
        b_xrt = audio_b / wall_b
        row(
            f"(b) same, model preloaded, max_windows={run_windows}",
            audio_b,
            wall_b,
            f"{wall_b / dec_wall:.2f}x decode cost",
        )
        if not args.skip_all_windows:
            model.config.max_windows = None
            audio_c, wall_c, _ = bench_library(folder, model)
            row(
                "(c) same, every window (max_windows=None)",
                audio_c,
                wall_c,
                f"{wall_c / dec_wall:.2f}x decode cost",
            )
    finally:
        model.config.max_windows = default_windows

    clap_xrt = None
    if not args.skip_clap:
        from clap_indexer import ClapIndexer

        clap_paths = paths[: args.clap_tracks] if args.clap_tracks else paths
        indexer = ClapIndexer()
        indexer.embed_windows(np.zeros((2, 480000), np.float32))  # warm-up
        clap_audio, clap_wall, _ = indexer.index(clap_paths)
        clap_xrt = clap_audio / clap_wall
        tm = indexer.timings
        row(
            f"(d) CLAP-style (HTSAT, 10-s windows), {len(clap_paths)} tracks",
            clap_audio,
            clap_wall,
            f"decode {tm['decode']:.1f} s, features {tm['features']:.1f} s, "
            f"model {tm['model']:.1f} s",
        )

    print(
        "\ndecode alone, per file:  "
        + ",  ".join(f"{fmt} {statistics.mean(v):.2f} s" for fmt, v in sorted(per_format.items()))
    )

    print("\ntargets (this machine):")
    checks = [
        (f"(b) >= 200x real time: {b_xrt:.0f}x", b_xrt >= 200),
        (f"(b) <= 2x decode cost: {wall_b / dec_wall:.2f}x", wall_b <= 2 * dec_wall),
    ]
    if clap_xrt is not None:
        speedup = b_xrt / clap_xrt
        checks.append((f"(b) >= 5x CLAP-style: {speedup:.1f}x", speedup >= 5))
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")
    print(
        f"  (decode alone runs at {dec_xrt:.0f}x real time; indexer report says "
        f"{report.realtime_factor:.0f}x)"
    )

    print(f"  (load average (1 min) now {os.getloadavg()[0]:.1f})")

    if not args.skip_breakdown:
        t = breakdown(paths, model, run_windows)
        print_breakdown(f"melodex breakdown, max_windows={run_windows}", t, len(paths), total_s)
        if not args.skip_all_windows:
            t = breakdown(paths, model, None)
            print_breakdown("melodex breakdown, every window", t, len(paths), total_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
