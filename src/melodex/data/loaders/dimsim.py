"""DIM-SIM (Lee, Bryan, Salamon, Jin & Nam, ICASSP 2020): ~4,000 human-voted triplets of 3-second
Million Song Dataset clips ("which of song 1 and song 2 is more similar to the anchor?"), as
TTMR++ uses them for its track-similarity table (``ttmrpp-track`` in `melodex.evaluate.tasks`).

Not a text-to-music dataset: its manifest holds the clips, so their audio can be embedded, and
`read_triplets` gives the task the votes. No copy of the csv is public on GitHub (the authors'
jongpillee/dim-sim was not reachable); the loader is tested on a reconstruction from two
independent readers of the real file (TTMR++ ``mtrpp/datasets/dimsim.py``, commit 4bc7aa7, and
a second evaluation script; ``tests/fixtures/dimsim/README.md``).

Files expected, in TTMR++'s ``dim-sim`` folder given as ``root`` (or its parent):

- ``clean-dim-sim.csv`` (or ``dim-sim.csv``, or the ``triplets=`` option): columns
  ``anchor_id``, ``anchor_start_seconds``, ``song1_id``, ``song1_start_seconds``, ``song2_id``,
  ``song2_start_seconds``, ``song1_vote`` (1 when people found song 1 closer to the anchor, else
  0); ids are MSD track ids, starts in seconds.
- ``track_meta.json`` (optional): TTMR++'s metadata, keyed ``"{track_id}_{position}_{start}"``
  (position ``anchor`` / ``song1`` / ``song2``) with ``title``, ``release`` and
  ``artist_name``; it gives the clips their title, album and artist, which the text-anchored
  protocol needs.
- Audio: ``<audio_root>/<track_id>.mp3`` (default ``root/audio``), any audio extension.

Items: one per distinct clip (track, start), id ``dimsim:<track_id>@<start>``, ``start`` and
``end`` = start + ``clip_seconds`` (3, as DIM-SIM and TTMR++), title/artist/album when known,
``extra`` with ``track_id``, ``clip_start`` and ``positions``. Split: every clip is ``test``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melodex.data.loaders._common import (
    DatasetFormatError,
    LoadResult,
    bad_row,
    first_existing,
    index_audio,
    keep_present,
    make_item,
    parse_float,
    read_json_file,
    read_table,
)

NAME = "dim-sim"
POSITIONS = ("anchor", "song1", "song2")
COLUMNS = (*(f"{p}_{c}" for p in POSITIONS for c in ("id", "start_seconds")), "song1_vote")
CLIP_SECONDS = 3.0


def clip_id(track_id: str, start: float) -> str:
    """The manifest id of a clip: ``dimsim:<track_id>@<start>`` (start as ``%g``)."""
    return f"dimsim:{track_id}@{start:g}"


@dataclass(frozen=True)
class Triplet:
    """One voted triplet: the three clips' manifest ids and whether song 1 won the vote."""

    anchor: str
    song1: str
    song2: str
    song1_vote: int
    line: int


def dimsim_folder(root: Path) -> Path:
    root = Path(root)
    if first_existing(root / "clean-dim-sim.csv", root / "dim-sim.csv"):
        return root
    return root / "dim-sim"


def triplets_file(root: Path) -> Path:
    folder = dimsim_folder(root)
    path = first_existing(folder / "clean-dim-sim.csv", folder / "dim-sim.csv")
    if path is None:
        raise DatasetFormatError(f"no clean-dim-sim.csv or dim-sim.csv in {folder}")
    return path


def _vote(value: str, path: Path, line: int) -> int:
    text = value.strip().lower()
    if text in ("1", "1.0", "true"):
        return 1
    if text in ("0", "0.0", "false"):
        return 0
    raise bad_row(path, line, f"song1_vote must be 0 or 1, got {value!r}")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str], dict[str, tuple[str, float, str]]]]:
    for line, row in read_table(path, required=COLUMNS):
        clips = {}
        for position in POSITIONS:
            track = row[f"{position}_id"].strip()
            raw = row[f"{position}_start_seconds"].strip()
            start = parse_float(raw, path, line, f"{position}_start_seconds")
            if not track or start < 0:
                raise bad_row(path, line, f"{position}: need a track id and a start >= 0")
            clips[position] = (track, start, raw)
        yield line, row, clips


def read_triplets(path: str | Path) -> list[Triplet]:
    """The triplets of a DIM-SIM csv (a file, or a folder holding one), clips as manifest ids."""
    path = Path(path)
    if path.is_dir():
        path = triplets_file(path)
    out = []
    for line, row, clips in _rows(path):
        ids = {p: clip_id(t, s) for p, (t, s, _) in clips.items()}
        out.append(
            Triplet(
                ids["anchor"],
                ids["song1"],
                ids["song2"],
                _vote(row["song1_vote"], path, line),
                line,
            )
        )
    if not out:
        raise DatasetFormatError(f"{path}: no triplet")
    return out


def _meta_lookup(meta: dict[str, Any], track: str, position: str, start: float, raw: str) -> Any:
    """TTMR++ keys the metadata with pandas' string of the start: try the csv's text, then the
    integer and float spellings."""
    spellings = [raw, f"{start:g}", str(start)]
    if float(start).is_integer():
        spellings.append(str(int(start)))
    for text in spellings:
        entry = meta.get(f"{track}_{position}_{text}")
        if isinstance(entry, dict):
            return entry
    return None


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    triplets: Path | None = None,
    clip_seconds: float = CLIP_SECONDS,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    folder = dimsim_folder(root)
    path = Path(triplets) if triplets else triplets_file(folder)
    meta_path = folder / "track_meta.json"
    meta = read_json_file(meta_path) if meta_path.is_file() else {}
    if not isinstance(meta, dict):
        raise bad_row(meta_path, None, "expected an object keyed by {track}_{position}_{start}")
    if not meta:
        result.warnings.append(
            f"no {meta_path.name}: clips have no title/artist/album, so the text-anchored "
            "protocol cannot phrase their queries"
        )
    audio_root = Path(audio_root) if audio_root else first_existing(folder / "audio") or folder
    audio = index_audio(audio_root)
    clips: dict[str, dict[str, Any]] = {}
    n_triplets = 0
    for _line, _row, found in _rows(path):
        n_triplets += 1
        for position, (track, start, raw) in found.items():
            clip = clips.setdefault(
                clip_id(track, start),
                {"track": track, "start": start, "positions": [], "meta": None},
            )
            if position not in clip["positions"]:
                clip["positions"].append(position)
            clip["meta"] = clip["meta"] or _meta_lookup(meta, track, position, start, raw)
    result.notes.append(
        f"{n_triplets} triplet(s) over {len(clips)} distinct clip(s) in {path.name}"
    )
    items, unnamed = [], 0
    for cid, clip in clips.items():
        info = clip["meta"] or {}
        unnamed += not info
        items.append(
            make_item(
                id=cid,
                audio=audio.get(clip["track"], audio_root / f"{clip['track']}.mp3"),
                split="test",
                title=str(info["title"]) if info.get("title") else None,
                artist=str(info["artist_name"]) if info.get("artist_name") else None,
                album=str(info["release"]) if info.get("release") else None,
                start=clip["start"],
                end=clip["start"] + float(clip_seconds),
                extra={
                    "track_id": clip["track"],
                    "clip_start": clip["start"],
                    "positions": clip["positions"],
                },  # fmt: skip
                source=NAME,
            )
        )
    if meta and unnamed:
        result.warnings.append(f"{unnamed} clip(s) have no entry in {meta_path.name}")
    keep_present(result, items)
    return result
