"""CUE-sheet albums: one audio file plus a ``.cue`` indexed as the album's tracks.

After a folder is indexed, each ``.cue`` sheet whose FILE is an indexed audio file replaces that
file's row with one row per TRACK: id from ``<audio path>#<track number>``, the same path (so
the file is served and kept track of as before), the sheet's title and performer, the album
title, its length (up to the next track's INDEX 01, or the file's end), and vectors from the
samples of that span alone. Window starts are kept in the file's time, so a hit's
``segment_start`` plays the track's best moment from within the album file.

The parser is written here (the commands FILE, TRACK, TITLE, PERFORMER, INDEX 01, REM ignored),
since the CUE parsers on PyPI are either unmaintained or split files with external tools.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError

FRAMES_PER_SECOND = 75
_TIME = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})$")


@dataclass
class CueTrack:
    number: int
    title: str | None
    performer: str | None
    start: float
    end: float | None = None  # None: to the end of the file


@dataclass
class CueSheet:
    file: str  # the audio file, resolved beside the sheet
    album: str | None
    performer: str | None
    tracks: list[CueTrack]


def parse_cue(path: str | Path) -> CueSheet:
    """Read a single-FILE CUE sheet; raises MelodexError naming the line of a problem."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older rippers write Latin-1
    album = performer = file = None
    tracks: list[CueTrack] = []
    for n, line in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(line, posix=True)
        except ValueError as exc:
            raise MelodexError(f"{path}:{n}: {exc}") from None
        if not words:
            continue
        command, args = words[0].upper(), words[1:]
        if command == "FILE" and args:
            if file is not None:
                raise MelodexError(f"{path}:{n}: sheets of several FILEs are not supported")
            file = str((path.parent / args[0]).resolve())
        elif command == "TRACK" and args:
            tracks.append(CueTrack(int(args[0]), None, None, start=-1.0))
        elif command in ("TITLE", "PERFORMER") and args:
            target = tracks[-1] if tracks else None
            if command == "TITLE":
                if target is None:
                    album = args[0]
                else:
                    target.title = args[0]
            elif target is None:
                performer = args[0]
            else:
                target.performer = args[0]
        elif command == "INDEX" and len(args) == 2 and tracks and int(args[0]) == 1:
            match = _TIME.match(args[1])
            if match is None:
                raise MelodexError(f"{path}:{n}: bad INDEX time {args[1]!r} (mm:ss:ff)")
            mm, ss, ff = (int(g) for g in match.groups())
            tracks[-1].start = mm * 60 + ss + ff / FRAMES_PER_SECOND
    if file is None or not tracks:
        raise MelodexError(f"{path}: no FILE or no TRACK in the sheet")
    if any(t.start < 0 for t in tracks):
        raise MelodexError(f"{path}: a TRACK without INDEX 01")
    for a, b in zip(tracks, tracks[1:], strict=False):
        a.end = b.start
    return CueSheet(file=file, album=album, performer=performer, tracks=tracks)


def cue_id(audio: str, number: int) -> int:
    from melodex.library.store import track_id

    return track_id(f"{audio}#{number}")


def index_cue_sheets(
    store: Any, model: Any, folder: str | Path, *, follow_symlinks: bool = False
) -> list[str]:
    """Replace the rows of indexed audio files that a ``.cue`` sheet below ``folder`` names
    by one row per track; returns the sheets applied (unchanged ones are skipped)."""
    from melodex.audio import load_audio
    from melodex.library.store import TrackRow, track_id
    from melodex.library.walk import walk_folder

    # the indexer's own walk: inside the folder, no link escapes, any depth or name length
    found = walk_folder(folder, follow_symlinks=follow_symlinks, extensions={".cue"})
    sheets = [Path(p) for p in found.files]
    if not sheets:
        return []  # (a sheet deleted later leaves its tracks until the audio file changes)
    cols = ["id", "path", "content_hash", "size", "mtime_ns"]
    states = {int(r["id"]): _State(**r) for r in store.rows(columns=cols)}
    gone = [i for i, s in states.items() if s.content_hash.startswith("cue:")
            and not os.path.isfile(s.path)]  # fmt: skip
    if gone:
        with store.writing():
            store.delete(gone)
    done = []
    for sheet_path in sheets:
        try:
            sheet = parse_cue(sheet_path)
        except (MelodexError, OSError, ValueError):
            continue  # a broken sheet leaves its file indexed as one track
        if not os.path.isfile(sheet.file):
            continue
        st = os.stat(sheet.file)
        digest = hashlib.sha1(sheet_path.read_bytes()).hexdigest()[:16]
        ids = [cue_id(sheet.file, t.number) for t in sheet.tracks]
        first = states.get(ids[0])
        if (
            first is not None
            and (first.size, first.mtime_ns) == (st.st_size, st.st_mtime_ns)
            and first.content_hash.startswith(f"cue:{digest}:")
            and track_id(sheet.file) not in states
        ):
            continue  # already split from this sheet and this file
        if track_id(sheet.file) not in states and first is None:
            continue  # the file is not indexed (failed, or outside the folder)
        try:
            y = load_audio(sheet.file, sr=model.sample_rate)
        except (MelodexError, OSError):
            continue  # an album file that no longer decodes keeps its one-track row
        total = len(y) / model.sample_rate
        rows = []
        for tid, t in zip(ids, sheet.tracks, strict=True):
            end = total if t.end is None else min(t.end, total)
            a, b = int(t.start * model.sample_rate), int(end * model.sample_rate)
            if b - a < model.sample_rate // 10:
                continue
            emb = model.embed_waveform(y[a:b])
            rows.append(
                TrackRow(
                    id=tid,
                    path=sheet.file,
                    content_hash=f"cue:{digest}:{t.number}",
                    size=st.st_size,
                    mtime_ns=st.st_mtime_ns,
                    duration=float(end - t.start),
                    title=t.title,
                    artist=t.performer or sheet.performer,
                    album=sheet.album,
                    genre=None,
                    vector=emb.vector,
                    window_vectors=emb.window_vectors,
                    window_starts=np.asarray(emb.window_starts, np.float32) + np.float32(t.start),
                    tag_scores=emb.tag_scores,
                )  # fmt: skip
            )
        with store.writing():
            store.upsert(rows)
            stale = [i for i in states if i not in ids and _from_sheet(states[i], sheet.file)]
            store.delete([track_id(sheet.file), *stale])
        done.append(str(sheet_path))
    return done


@dataclass
class _State:
    id: int
    path: str
    content_hash: str
    size: int
    mtime_ns: int


def _from_sheet(state: Any, audio: str) -> bool:
    return state.path == audio and state.content_hash.startswith("cue:")
