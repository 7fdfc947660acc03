"""Rendering the planned tracks (in parallel, resumably) and writing the manifest; the demo's
searches and what each demo track really is."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from melodex.data.demo.captions import describe
from melodex.data.demo.catalogue import (
    _VERSION,
    MANIFEST_NAME,
    Candidate,
    plan_tracks,
    split_of,
    track_id,
)
from melodex.data.demo.pieces import arrange, load_piece
from melodex.data.manifest import write_manifest
from melodex.data.render import find_soundfont, render_parts, require_tools
from melodex.errors import MelodexError
from melodex.progress import ProgressFn

# ---------------------------------------------------------------------------- building


def _plan_key(slot: list[Candidate], *, seed: int, seconds: float, fmt: str) -> str:
    blob = json.dumps([[c.key for c in slot], seed, seconds, fmt, _VERSION])
    return hashlib.sha1(blob.encode()).hexdigest()


def _render_slot(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: render the first candidate of a slot that works; write audio then its record."""
    out_dir, seed, seconds, fmt = Path(job["out_dir"]), job["seed"], job["seconds"], job["fmt"]
    reasons = []
    for fields in job["slot"]:
        cand = Candidate(**fields)
        try:
            piece = load_piece(cand)
            arr = arrange(piece, cand, seed=seed, seconds=seconds)
            info = describe(cand, piece, arr, seed=seed)
            tid = track_id(cand)
            rel = f"audio/{tid}.{fmt}"
            tags = {k: info[k] for k in ("title", "artist", "album", "genre")}
            duration = render_parts(
                arr.parts, out_dir / rel, seconds=seconds, soundfont=Path(job["soundfont"]),
                tags=tags, work_dir=out_dir / ".work",
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - odd corpus files fail in many ways; try the next
            reasons.append(f"{cand.key}: {type(exc).__name__}: {exc}")
            continue
        info["extra"]["duration"] = round(duration, 3)
        info["extra"]["seed"] = seed
        record = {"id": tid, "audio": rel, "start": None, "end": None}
        record.update({k: info[k] for k in ("texts", "tags", "title", "artist", "album")})
        record.update(split=split_of(cand.key), extra=info["extra"])
        sidecar = Path(job["sidecar"])
        tmp = sidecar.with_name(f".{sidecar.name}.part")
        tmp.write_text(json.dumps({"plan_key": job["plan_key"], "record": record}), "utf-8")
        os.replace(tmp, sidecar)
        return record
    raise MelodexError("could not render any candidate of a demo slot:\n" + "\n".join(reasons))


def _finished(sidecar: Path, plan_key: str, out_dir: Path) -> dict[str, Any] | None:
    try:
        saved = json.loads(sidecar.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    record = saved.get("record") or {}
    audio = out_dir / record.get("audio", "\0")
    if saved.get("plan_key") != plan_key or not audio.is_file() or audio.stat().st_size == 0:
        return None
    return record


def build_demo(
    out_dir: str | Path,
    *,
    n_tracks: int = 48,
    seconds: float = 30.0,
    seed: int = 0,
    formats: Sequence[str] = ("flac",),
    progress: ProgressFn | None = None,
    soundfont: str | Path | None = None,
    workers: int | None = None,
) -> Path:
    """Build the demo corpus in ``out_dir`` and return the path of its manifest.

    Parameters
    ----------
    out_dir : folder to create; audio goes to ``out_dir/audio``, the manifest to
        ``out_dir/manifest.jsonl``.
    n_tracks : number of tracks, balanced across the collections.
    seconds : length of each track (pieces are cut, short ones looped).
    seed : the same seed gives the same pieces, arrangements, captions and manifest.
    formats : audio formats (flac, ogg, mp3, m4a), assigned to tracks in turn.
    progress : called as ``progress(done, total, note)`` after each track (skipped ones included).
    soundfont : .sf2 file; default ``$MELODEX_SOUNDFONT`` or the Debian FluidR3 GM soundfont.
    workers : processes rendering in parallel (default: up to 2, one per core).

    Re-running with the same arguments keeps finished tracks (each is written to a temporary name
    and renamed once complete, with a record beside it), so an interrupted build resumes.
    """
    if n_tracks < 1 or seconds <= 0:
        raise MelodexError(f"n_tracks must be >= 1 and seconds > 0, got {n_tracks}, {seconds}")
    formats = [f.lower().lstrip(".") for f in formats] or ["flac"]
    require_tools(formats)
    sf2 = find_soundfont(soundfont)
    out_dir = Path(out_dir)
    for sub in ("audio", ".records", ".work"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    slots = plan_tracks(n_tracks, seed=seed)
    records: list[dict[str, Any] | None] = [None] * len(slots)
    pending = []
    for i, slot in enumerate(slots):
        fmt = formats[i % len(formats)]
        plan_key = _plan_key(slot, seed=seed, seconds=seconds, fmt=fmt)
        sidecar = out_dir / ".records" / f"{track_id(slot[0])}.json"
        records[i] = _finished(sidecar, plan_key, out_dir)
        if records[i] is None:
            job = {"slot": [asdict(c) for c in slot], "seed": seed, "seconds": float(seconds),
                   "fmt": fmt, "out_dir": str(out_dir), "soundfont": str(sf2),
                   "sidecar": str(sidecar), "plan_key": plan_key}  # fmt: skip
            pending.append((i, job))
    total, done = len(slots), len(slots) - len(pending)
    if progress:
        progress(done, total, "")
    n_workers = min(workers or min(2, os.cpu_count() or 1), len(pending))
    if n_workers <= 1:
        for i, job in pending:
            records[i] = _render_slot(job)
            done += 1
            if progress:
                progress(done, total, "rendered")
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
            futures = {pool.submit(_render_slot, job): i for i, job in pending}
            try:
                for fut in cf.as_completed(futures):
                    records[futures[fut]] = fut.result()
                    done += 1
                    if progress:
                        progress(done, total, "rendered")
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    with contextlib.suppress(OSError):
        (out_dir / ".work").rmdir()  # only when empty
    return write_manifest(out_dir / MANIFEST_NAME, [r for r in records if r is not None])


#: The searches `melodex demo` runs on the demo library (README: "What `make demo` prints").
DEMO_QUERIES = (
    "a choir singing",
    "string quartet",
    "church organ",
    "a lively irish fiddle tune",
    "slow flute melody",
    "music for meditation in a forest",
)


def demo_truth(manifest: Path) -> dict[str, str]:
    """What each demo track really is, by resolved audio path: "instruments, form, tempo",
    so a search's hits can be judged against the manifest."""
    from melodex.data.manifest import read_manifest

    truth = {}
    for item in read_manifest(manifest):
        extra = item.get("extra", {})
        parts = [*extra.get("instruments", []), extra.get("form", ""), extra.get("tempo", "")]
        path = str((manifest.parent / item["audio"]).resolve())
        truth[path] = ", ".join(p for p in parts if p)
    return truth
