"""Song Describer Dataset (Manco et al., 2023): ~1.1k captions of ~700 MTG-Jamendo recordings.

Release: Zenodo record 10072001 (``song_describer.csv``, ``audio.zip``), data CC BY-SA 4.0. No
copy of the csv is public on GitHub, so this loader is tested on a reconstruction built from the
authors' own evidence (mulab-mir/song-describer-dataset ``scripts/create_dataset.py`` and
``docs/datacard.md``, commit ed7e754; see ``tests/fixtures/song_describer/README.md``).

Files expected:

- ``root/song_describer.csv`` (comma-separated, header ``caption_id``, ``track_id``,
  ``caption``, ``is_valid_subset``, ``familiarity``, ``artist_id``, ``album_id``, ``path``,
  ``duration``; rows sorted by track): one row per caption. ``path`` is MTG-Jamendo's path,
  ``NN/<track_id>.mp3`` (folder = the last two digits of the unpadded id: ``26/226.mp3``);
  ``is_valid_subset`` is ``True``, ``False`` or empty (no validation vote: read as False, as
  the authors' ``fillna(False)``); ``duration`` is the *full* Jamendo track's length.
- Audio: the release's ``audio.zip`` unpacks to ``audio/audio/NN/<track_id>.2min.mp3``, the
  2-minute excerpt: **not** the csv's ``path`` (TTMR++ builds the name as
  ``path.removesuffix(".mp3") + ".2min.mp3"``). The loader takes ``audio_root / path`` when
  that file exists, else ``audio_root / NN/<id>.2min.mp3`` (default ``audio_root``:
  ``root/audio/audio`` or ``root/audio``, whichever exists, else ``root``).

One item per ``track_id``, holding all its captions (kind ``caption``). ``extra`` holds, typed:
``track_id``, ``caption_ids`` (list of int), ``familiarity`` (list, one int or None per
caption), ``is_valid_subset`` (list of bool per caption), ``artist_id`` and ``album_id`` (int),
``track_duration`` (float, the full track, from the csv) and ``duration`` (float, the excerpt
file's real length, read from its header; absent while the audio is). The dataset carries no
tags and no names (only Jamendo ids), so items have neither tags nor metadata text.

Split: the dataset is for evaluation only, so every item is ``test``. With
``valid_subset_only=True`` only the captions flagged ``is_valid_subset`` are kept (tracks left
without a caption are dropped): TTMR++ evaluates on that subset (746 captions, 547 tracks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from melodex.data.loaders._common import (
    LoadResult,
    bad_row,
    first_existing,
    keep_present,
    make_item,
    parse_bool,
    read_table,
    require_file,
)

NAME = "song-describer"
COLUMNS = ("caption_id", "track_id", "caption", "is_valid_subset", "path")
EXCERPT_SUFFIX = ".2min.mp3"


def excerpt_path(audio_root: Path, path: str) -> Path:
    """The file of a csv ``path`` on disk: ``path`` itself when present, else the release's
    2-minute excerpt ``NN/<id>.2min.mp3``."""
    direct = audio_root / path
    if direct.is_file() or path.endswith(EXCERPT_SUFFIX):
        return direct
    return audio_root / (path.removesuffix(".mp3") + EXCERPT_SUFFIX)


def _int_or_none(value: str, csv_path: Path, line: int, column: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise bad_row(
            csv_path, line, f"column {column!r} must be an integer, got {value!r}"
        ) from None
    if not number.is_integer():
        raise bad_row(csv_path, line, f"column {column!r} must be an integer, got {value!r}")
    return int(number)


def _seconds(path: Path) -> float | None:
    from melodex.audio import probe
    from melodex.errors import AudioDecodeError

    try:
        return round(probe(path).duration, 3)
    except AudioDecodeError:
        return None


def load(
    root: Path, *, audio_root: Path | None = None, valid_subset_only: bool = False
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    csv_path = require_file(root / "song_describer.csv", "Song Describer csv")
    if audio_root is None:
        audio_root = first_existing(root / "audio" / "audio", root / "audio") or root
    audio_root = Path(audio_root)

    tracks: dict[str, dict[str, Any]] = {}
    skipped = 0
    for line, row in read_table(csv_path, required=COLUMNS):
        track_id, caption = row["track_id"].strip(), row["caption"].strip()
        path = row["path"].strip()
        if not track_id or not path:
            raise bad_row(csv_path, line, "empty track_id or path")
        valid = parse_bool(row["is_valid_subset"], csv_path, line, "is_valid_subset")
        if (valid_subset_only and not valid) or not caption:
            skipped += 1
            continue
        track = tracks.setdefault(
            track_id,
            {"path": path, "captions": [], "caption_ids": [], "familiarity": [], "valid": []},
        )
        if track["path"] != path:
            raise bad_row(
                csv_path, line, f"track {track_id} has two paths: {track['path']!r}, {path!r}"
            )
        for key in ("artist_id", "album_id"):
            number = _int_or_none(row.get(key, ""), csv_path, line, key)
            if number is not None:
                track[key] = number
        if row.get("duration", "").strip():
            try:
                track["track_duration"] = float(row["duration"])
            except ValueError:
                raise bad_row(
                    csv_path, line, f"column 'duration' must be a number, got {row['duration']!r}"
                ) from None
        track["captions"].append(caption)
        caption_id = _int_or_none(row["caption_id"], csv_path, line, "caption_id")
        track["caption_ids"].append(caption_id)
        track["familiarity"].append(
            _int_or_none(row.get("familiarity", ""), csv_path, line, "familiarity")
        )
        track["valid"].append(valid)
    if skipped:
        result.warnings.append(f"{skipped} caption row(s) skipped (empty or not in valid subset)")

    items = []
    for track_id, track in tracks.items():
        audio = excerpt_path(audio_root, track["path"])
        extra: dict[str, Any] = {
            "track_id": int(track_id) if track_id.isdigit() else track_id,
            "caption_ids": track["caption_ids"],
            "familiarity": track["familiarity"],
            "is_valid_subset": track["valid"],
            "path": track["path"],
        }
        for key in ("artist_id", "album_id", "track_duration"):
            if key in track:
                extra[key] = track[key]
        if audio.is_file() and (seconds := _seconds(audio)) is not None:
            extra["duration"] = seconds
        items.append(
            make_item(
                id=f"song-describer:{track_id}",
                audio=audio,
                split="test",
                captions=[("caption", c) for c in track["captions"]],
                extra=extra,
                source=NAME,
            )
        )
    keep_present(result, items)
    return result
