"""FMA, the Free Music Archive dataset (Defferrard et al., 2017).

Files expected (from ``fma_metadata.zip``, in ``root`` or ``root/fma_metadata``):

- ``tracks.csv``: comma-separated with a **three-row header**: row 1 the column group
  (``album``, ``artist``, ``set``, ``track``), row 2 the field (``title``, ``name``, ``split``,
  ``subset``, ``genre_top``, ``genres``, ``genres_all``, ...), row 3 ``track_id`` followed by
  empty cells; then one row per track, the track id first. Read: ``track/title``,
  ``artist/name``, ``album/title``, ``track/genre_top``, ``track/genres_all`` (else
  ``track/genres``; a list literal of genre ids like ``[21, 76]``), ``set/split``
  (``training`` / ``validation`` / ``test``), ``set/subset`` (``small`` / ``medium`` /
  ``large``, the smallest subset holding the track), ``track/duration``.
- ``genres.csv``: header ``genre_id``, ``#tracks``, ``parent``, ``title``, ``top_level``;
  maps genre ids to names.
- Audio: ``<audio folder>/<first 3 digits>/<6-digit id>.mp3`` (``fma_small/000/000002.mp3``), the
  folder being ``audio_root``, else the first of ``root/fma_{full,large,medium,small}`` found.

Tags: the names of ``genres_all`` (the track's genres and their parents) and ``genre_top``,
lower-cased. Texts: the tag text and the metadata text ("title - artist - album").

Split: the official ``set/split`` column (``training`` -> train, ``validation`` -> valid,
``test`` -> test). ``subset`` (default: from the audio folder's name, else ``large``) keeps the
tracks of that subset: ``small`` those marked small, ``medium`` small and medium, ``large`` and
``full`` all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from melodex.data.loaders._common import (
    DatasetFormatError,
    LoadResult,
    bad_row,
    first_existing,
    keep_present,
    make_item,
    parse_list,
    read_table,
    require_file,
    text_lines,
)

NAME = "fma"
SUBSETS = ("small", "medium", "large", "full")
SPLIT_NAMES = {"training": "train", "validation": "valid", "test": "test"}
NEEDED = (("set", "split"), ("set", "subset"), ("track", "title"))


def read_tracks(path: Path) -> Iterator[tuple[int, dict[tuple[str, str], str]]]:
    """Yield ``(line number, {(group, field): value})`` for each track row of ``tracks.csv``."""
    physical = [0]

    def lines() -> Iterator[str]:
        for number, line in text_lines(path):
            physical[0] = number
            yield line

    reader = csv.reader(lines())
    try:
        header = [next(reader, None) for _ in range(3)]
        if any(h is None or not h for h in header) or header[2][0].strip() != "track_id":
            raise bad_row(path, 3, "expected FMA's 3-row header ending in a 'track_id' row")
        columns = list(zip(header[0], header[1], strict=False))
        missing = [f"{g}/{f}" for g, f in NEEDED if (g, f) not in columns]
        if missing:
            raise bad_row(path, 2, f"missing column(s) {missing}")
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(columns):
                raise bad_row(path, physical[0], f"expected {len(columns)} fields, got {len(row)}")
            out = dict(zip(columns[1:], row[1:], strict=True))
            out["track", "id"] = row[0]
            yield physical[0], out
    except csv.Error as exc:
        raise bad_row(path, physical[0], f"unreadable CSV ({exc})") from None


def read_genres(path: Path) -> dict[int, str]:
    out = {}
    for line, row in read_table(path, required=("genre_id", "title")):
        try:
            out[int(row["genre_id"])] = row["title"].strip()
        except ValueError:
            raise bad_row(
                path, line, f"genre_id must be an integer, got {row['genre_id']!r}"
            ) from None
    return out


def load(root: Path, *, audio_root: Path | None = None, subset: str | None = None) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    meta = first_existing(root / "fma_metadata" / "tracks.csv") or root / "tracks.csv"
    tracks_path = require_file(meta, "FMA tracks.csv")
    genres_path = require_file(tracks_path.with_name("genres.csv"), "FMA genres.csv")
    if audio_root is None:
        audio_root = first_existing(*(root / f"fma_{s}" for s in reversed(SUBSETS))) or root
    audio_root = Path(audio_root)
    if subset is None:
        name = audio_root.name.removeprefix("fma_")
        subset = name if name in SUBSETS else "large"
    if subset not in SUBSETS:
        raise DatasetFormatError(f"unknown FMA subset {subset!r} (expected one of {SUBSETS})")
    allowed = {"small": {"small"}, "medium": {"small", "medium"}}.get(
        subset, {"small", "medium", "large"}
    )
    genres = read_genres(genres_path)

    items, outside = [], 0
    for line, row in read_tracks(tracks_path):
        if not row["track", "id"].strip().isdigit():
            raise bad_row(
                tracks_path, line, f"track_id must be an integer, got {row['track', 'id']!r}"
            )
        tid = int(row["track", "id"])
        split_name, track_subset = row["set", "split"].strip(), row["set", "subset"].strip()
        if split_name not in SPLIT_NAMES or track_subset not in SUBSETS[:3]:
            raise bad_row(
                tracks_path, line, f"bad set/split {split_name!r} or set/subset {track_subset!r}"
            )
        if track_subset not in allowed:
            outside += 1
            continue
        column = ("track", "genres_all") if ("track", "genres_all") in row else ("track", "genres")
        ids = parse_list(row.get(column, ""), tracks_path, line, "/".join(column))
        try:
            names = [genres[int(g)] for g in ids]
        except (KeyError, ValueError):
            raise bad_row(
                tracks_path, line, f"genre id(s) {ids} not all in {genres_path}"
            ) from None
        top = row.get(("track", "genre_top"), "").strip()
        extra: dict[str, Any] = {"track_id": tid, "subset": track_subset}
        if top:
            extra["genre_top"] = top
        if row.get(("track", "duration"), "").strip().isdigit():
            extra["duration"] = int(row["track", "duration"])
        digits = f"{tid:06d}"
        items.append(
            make_item(
                id=f"fma:{tid}",
                audio=audio_root / digits[:3] / f"{digits}.mp3",
                split=SPLIT_NAMES[split_name],
                tags=([top] if top else []) + names,
                title=row.get(("track", "title")),
                artist=row.get(("artist", "name")),
                album=row.get(("album", "title")),
                extra=extra,
                source=NAME,
            )
        )
    if outside:
        result.warnings.append(f"{outside} track(s) outside the {subset!r} subset left out")
    keep_present(result, items)
    return result
