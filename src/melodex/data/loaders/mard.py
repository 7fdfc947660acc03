"""MARD, the Multimodal Album Reviews Dataset (Oramas et al., 2016): Amazon album metadata and
customer reviews.

Files expected under ``root``:

- ``mard_metadata.json``: one JSON object per line with ``amazon-id`` (required), ``artist``,
  ``title`` (the album's, stored as ``album``), and optionally ``label``, ``first-release-year``, genre fields
  (``genres`` as a list or string, ``root-genre``; read when present) and ``songs`` (a list of
  objects with ``title``); other fields go nowhere.
- ``mard_reviews.json``: one JSON object per line, Amazon's review format: ``amazon-id``
  (required), ``reviewText``, ``overall`` (stars), ``summary``, ``reviewerID``...
- Audio: MARD distributes AcousticBrainz descriptors, not audio; audio you fetched yourself is
  looked for as ``audio_root/<amazon-id>/<track>.<ext>`` (an album folder of tracks) or
  ``audio_root/<amazon-id>.<ext>`` (default ``audio_root``: ``root/audio`` when it exists, else
  ``root``).

Items are album-level: one per album, with every review as a text of the finer kind ``review``
(stored as ``caption`` with ``source`` ``mard:review`` while the manifest does not accept
``review``), genres as tags, and the album's first audio file (by name) as ``audio``; all its
files are named in ``extra["tracks"]``. ``per_track=True`` gives one item per audio file
instead, each with its album's texts (``id`` ``mard:<amazon-id>/<file stem>``). Albums with
fewer than ``min_reviews`` (default 1) non-empty reviews are left out, counted in a warning.

Split: MARD has none; a seeded hash (``seed``, ``fractions`` default 80/10/10) of the album key,
the lower-cased ``artist`` + ``title`` (falling back to the amazon id), so no album -- not even
two Amazon editions of it -- is in two splits, with or without ``per_track``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from melodex.data.loaders._common import (
    AUDIO_EXTS,
    DEFAULT_FRACTIONS,
    LoadResult,
    bad_row,
    first_existing,
    hash_split,
    keep_present,
    make_item,
    read_json_lines,
    require_file,
)

NAME = "mard"


def _genres(meta: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("root-genre", "root_genre", "genres", "genre"):
        value = meta.get(key)
        values = value if isinstance(value, list) else [value]
        out += [str(v) for v in values if isinstance(v, str | int) and str(v).strip()]
    return out


def _album_audio(audio_root: Path, amazon_id: str) -> list[Path]:
    folder = audio_root / amazon_id
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTS)
    single = [audio_root / f"{amazon_id}{ext}" for ext in AUDIO_EXTS]
    return [p for p in single if p.is_file()][:1]


def _album_key(meta: dict[str, Any]) -> str:
    artist, title = str(meta.get("artist") or "").strip(), str(meta.get("title") or "").strip()
    if artist and title:
        return " ".join(f"{artist}\0{title}".lower().split())
    return str(meta["amazon-id"])


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    per_track: bool = False,
    min_reviews: int = 1,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    meta_path = require_file(root / "mard_metadata.json", "MARD metadata")
    reviews_path = require_file(root / "mard_reviews.json", "MARD reviews")
    audio_root = Path(audio_root) if audio_root else first_existing(root / "audio") or root

    albums: dict[str, dict[str, Any]] = {}
    for line, meta in read_json_lines(meta_path):
        amazon_id = str(meta.get("amazon-id") or "").strip()
        if not amazon_id:
            raise bad_row(meta_path, line, "no 'amazon-id'")
        if amazon_id in albums:
            raise bad_row(meta_path, line, f"duplicate amazon-id {amazon_id!r}")
        albums[amazon_id] = meta

    reviews: dict[str, list[dict[str, Any]]] = defaultdict(list)
    orphans = 0
    for line, review in read_json_lines(reviews_path):
        amazon_id = str(review.get("amazon-id") or "").strip()
        if not amazon_id:
            raise bad_row(reviews_path, line, "no 'amazon-id'")
        text = review.get("reviewText")
        if text is not None and not isinstance(text, str):
            raise bad_row(reviews_path, line, "'reviewText' must be a string")
        if amazon_id not in albums:
            orphans += 1
        elif text and text.strip():
            reviews[amazon_id].append(review)
    if orphans:
        result.warnings.append(f"{orphans} review(s) of albums absent from the metadata ignored")

    items, few = [], 0
    for amazon_id, meta in albums.items():
        album_reviews = reviews.get(amazon_id, [])
        if len(album_reviews) < min_reviews:
            few += 1
            continue
        split = hash_split(_album_key(meta), seed=seed, fractions=fractions)
        files = _album_audio(audio_root, amazon_id)
        extra: dict[str, Any] = {
            "amazon_id": amazon_id,
            "ratings": [r.get("overall") for r in album_reviews],
            "tracks": [p.name for p in files],
        }
        for key in ("label", "first-release-year", "release-group-mbid", "artist-mbid"):
            if meta.get(key) not in (None, ""):
                extra[key.replace("-", "_")] = meta[key]
        common = {
            "split": split,
            "captions": [("review", r["reviewText"]) for r in album_reviews],
            "tags": _genres(meta),
            "album": str(meta.get("title") or ""),
            "artist": str(meta.get("artist") or ""),
            "source": NAME,
        }
        if not per_track:
            audio = files[0] if files else audio_root / amazon_id
            items.append(make_item(id=f"mard:{amazon_id}", audio=audio, extra=extra, **common))
            continue
        if not files:
            items.append(
                make_item(
                    id=f"mard:{amazon_id}", audio=audio_root / amazon_id, extra=extra, **common
                )
            )
        for path in files:
            items.append(
                make_item(
                    id=f"mard:{amazon_id}/{path.stem}",
                    audio=path,
                    extra=extra | {"track": path.name},
                    **common,
                )
            )
    if few:
        result.warnings.append(f"{few} album(s) with fewer than {min_reviews} review(s) left out")
    keep_present(result, items)
    return result
