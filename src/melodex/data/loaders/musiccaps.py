"""MusicCaps (Agostinelli et al., 2023): 5,521 ten-second YouTube segments, each with one caption
and an aspect list written by a musician.

Files expected:

- ``root/musiccaps-public.csv`` (comma-separated, header ``ytid``, ``start_s``, ``end_s``,
  ``audioset_positive_labels``, ``aspect_list``, ``caption``, ``author_id``,
  ``is_balanced_subset``, ``is_audioset_eval``); ``aspect_list`` is a Python list literal
  (``"['low quality', 'sustained strings melody']"``), the two flags ``True`` / ``False``.
- Audio under ``audio_root`` (default ``root/audio`` when it exists, else ``root``, searched
  recursively), named either ``{ytid}.{ext}`` or, as the common download scripts write them,
  ``[{ytid}]-[{start}-{end}].{ext}`` (start and end as in the csv, integers), any audio ext.
  YouTube videos that could not be fetched are the usual missing audio.

Texts: the caption (kind ``caption``) and the aspects as tags (lower-cased).

Split: the official one, ``is_audioset_eval`` True -> ``test``, else ``train``; MusicCaps has no
validation set.

Segment times: with ``full_videos=False`` (default) every audio file is taken to be the
ten-second segment itself (what the download scripts save), so ``start=0`` and
``end=end_s - start_s``; with ``full_videos=True`` a ``{ytid}.*`` file is the whole video's
audio and ``start`` / ``end`` are ``start_s`` / ``end_s`` (``[ytid]-[s-e]`` files are always
segments). The YouTube times are kept in ``extra`` either way.
"""

from __future__ import annotations

from pathlib import Path

from melodex.data.loaders._common import (
    LoadResult,
    bad_row,
    first_existing,
    index_audio,
    keep_present,
    make_item,
    parse_bool,
    parse_float,
    parse_list,
    read_table,
    require_file,
)

NAME = "musiccaps"
COLUMNS = ("ytid", "start_s", "end_s", "aspect_list", "caption", "is_audioset_eval")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def load(root: Path, *, audio_root: Path | None = None, full_videos: bool = False) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    csv_path = require_file(root / "musiccaps-public.csv", "MusicCaps csv")
    audio_root = Path(audio_root) if audio_root else first_existing(root / "audio") or root
    audio = index_audio(audio_root)

    items, seen = [], set()
    for line, row in read_table(csv_path, required=COLUMNS):
        ytid = row["ytid"].strip()
        if not ytid:
            raise bad_row(csv_path, line, "empty ytid")
        if ytid in seen:
            raise bad_row(csv_path, line, f"duplicate ytid {ytid!r}")
        seen.add(ytid)
        start = parse_float(row["start_s"], csv_path, line, "start_s")
        end = parse_float(row["end_s"], csv_path, line, "end_s")
        if not end > start >= 0:
            raise bad_row(csv_path, line, f"need 0 <= start_s < end_s, got {start}, {end}")
        aspects = parse_list(row["aspect_list"], csv_path, line, "aspect_list")
        test = parse_bool(row["is_audioset_eval"], csv_path, line, "is_audioset_eval")
        segment_name = f"[{ytid}]-[{_seconds(start)}-{_seconds(end)}]"
        if segment_name in audio or ytid not in audio:
            path = audio.get(segment_name, audio_root / f"{segment_name}.wav")
            seg_start, seg_end = 0.0, end - start
        else:
            path = audio[ytid]
            seg_start, seg_end = (start, end) if full_videos else (0.0, end - start)
        extra = {"ytid": ytid, "youtube_start": start, "youtube_end": end}
        extra["is_balanced_subset"] = parse_bool(
            row.get("is_balanced_subset", ""), csv_path, line, "is_balanced_subset"
        )
        for key in ("author_id", "audioset_positive_labels"):
            if row.get(key, "").strip():
                extra[key] = row[key].strip()
        items.append(
            make_item(
                id=f"musiccaps:{ytid}",
                audio=path,
                split="test" if test else "train",
                captions=[("caption", row["caption"])],
                tags=aspects,
                start=seg_start,
                end=seg_end,
                extra=extra,
                source=NAME,
            )
        )
    keep_present(result, items)
    return result
