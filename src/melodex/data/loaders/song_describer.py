"""Song Describer Dataset (Manco et al., 2023): ~1.1k captions of ~700 MTG-Jamendo recordings.

Files expected:

- ``root/song_describer.csv`` (comma-separated, header ``caption_id``, ``track_id``,
  ``caption``, ``is_valid_subset``, ``familiarity``, ``artist_id``, ``album_id``, ``path``,
  ``duration``): one row per caption; ``path`` is the recording's path relative to the audio
  folder (``00/1004500.2min.mp3``); ``is_valid_subset`` is ``True`` / ``False``.
- Audio: ``audio_root / path`` (default ``audio_root``: ``root/audio/audio`` or ``root/audio``,
  whichever exists, else ``root``).

One item per ``track_id``, holding all its captions (kind ``caption``); ``familiarity``,
``caption_ids``, ``artist_id``, ``album_id`` and ``duration`` go to ``extra``. The dataset
carries no tags and no names (only Jamendo ids), so items have neither tags nor metadata text.

Split: the dataset is for evaluation only, so every item is ``test``. With
``valid_subset_only=True`` only the captions flagged ``is_valid_subset`` are kept (tracks left
without a caption are dropped).
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
        if not track_id or not row["path"].strip():
            raise bad_row(csv_path, line, "empty track_id or path")
        valid = parse_bool(row["is_valid_subset"], csv_path, line, "is_valid_subset")
        if (valid_subset_only and not valid) or not caption:
            skipped += 1
            continue
        track = tracks.setdefault(
            track_id,
            {"path": row["path"].strip(), "captions": [], "caption_ids": [], "familiarity": []},
        )
        if track["path"] != row["path"].strip():
            raise bad_row(
                csv_path,
                line,
                f"track {track_id} has two paths: {track['path']!r}, {row['path']!r}",
            )
        for key in ("artist_id", "album_id", "duration"):
            if row.get(key, "").strip():
                track[key] = row[key].strip()
        track["captions"].append(caption)
        track["caption_ids"].append(row["caption_id"].strip())
        track["familiarity"].append(row.get("familiarity", "").strip() or None)
    if skipped:
        result.warnings.append(f"{skipped} caption row(s) skipped (empty or not in valid subset)")

    items = []
    for track_id, track in tracks.items():
        extra = {k: track[k] for k in ("caption_ids", "familiarity")}
        extra["track_id"] = track_id
        for key in ("artist_id", "album_id"):
            if key in track:
                extra[key] = track[key]
        if "duration" in track:
            try:
                extra["duration"] = float(track["duration"])
            except ValueError:
                extra["duration"] = track["duration"]
        items.append(
            make_item(
                id=f"song-describer:{track_id}",
                audio=audio_root / track["path"],
                split="test",
                captions=[("caption", c) for c in track["captions"]],
                extra=extra,
                source=NAME,
            )
        )
    keep_present(result, items)
    return result
