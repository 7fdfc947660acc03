"""MARD, the Multimodal Album Reviews Dataset (Oramas et al., 2016): Amazon album metadata and
customer reviews, with AcousticBrainz descriptors for the albums mapped to MusicBrainz.

The release (``mard.zip`` from MTG-UPF) is not public on GitHub, so this loader is tested on a
reconstruction from the dataset README and the public readers' code, with a real AcousticBrainz
low-level document (CC0) as the descriptor (``tests/fixtures/mard/README.md``).

Files expected under ``root``:

- ``mard_metadata.json``: one JSON object per line with ``amazon-id`` (required), ``artist``,
  ``title`` (the album's, stored as ``album``), and optionally ``label``, ``first-release-year``,
  ``release-group-mbid``, ``artist-mbid``, genre fields (``root-genre``; ``genres`` as a list or
  string), ``categories`` (Amazon category paths: a list of lists of names, or a list of
  strings) and ``songs`` (a list of objects with ``title`` and ``mbid``).
- ``mard_reviews.json``: one JSON object per line, Amazon's review format: ``amazon-id``
  (required; the README calls it ``product-id`` but the file and every reader use
  ``amazon-id``), ``reviewText``, ``overall`` (stars), ``summary``, ``reviewerID``...
- ``acousticbrainz_descriptors/<amazon-id>_<recording mbid>.json`` (optional): AcousticBrainz
  low-level documents, one per album in the release (its first track), one per track in the
  two-branch paper's extension.
- Audio: MARD distributes no audio. ``audio_source="audio"`` (default) looks for audio you
  fetched yourself as ``audio_root/<amazon-id>/<track>.<ext>`` (an album folder of tracks) or
  ``audio_root/<amazon-id>.<ext>`` (default ``audio_root``: ``root/audio`` when it exists, else
  ``root``). ``audio_source="descriptors"`` makes the descriptor documents the items' audio
  side instead (the two-branch seed's audio input): ``audio`` is the JSON file and
  ``extra["audio_features"]`` names the feature set, read with
  `melodex.data.acousticbrainz.descriptor_vector` (a 369-d vector: MFCC mean, covariance and
  inverse covariance, zero-crossing-rate and spectral roll-off statistics).

Items are album-level: one per album, with every review as a text of the finer kind ``review``
(stored as ``caption`` with ``source`` ``mard:review`` while the manifest does not accept
``review``), genres as tags, and the album's first audio file (or descriptor) by name as
``audio``; all its files are named in ``extra["tracks"]``. ``per_track=True`` gives one item per
audio file (or descriptor) instead, each with its album's texts (``id``
``mard:<amazon-id>/<file stem>``). Albums with fewer than ``min_reviews`` (default 1) non-empty
reviews are left out, counted in a warning.

Tags: ``root-genre`` and ``genres``; with ``category_tags=True`` also every name of the
``categories`` paths below their root (``CDs & Vinyl > Rock > Classic Rock`` gives ``rock``,
``classic rock``). ``extra["categories"]`` always keeps the paths as " > "-joined strings.

Split: MARD has none; a seeded hash (``seed``, ``fractions`` default 80/10/10) of the album key,
the lower-cased ``artist`` + ``title`` (falling back to the amazon id), so no album -- not even
two Amazon editions of it -- is in two splits, with or without ``per_track``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from melodex.data.acousticbrainz import FEATURE_SET
from melodex.data.loaders._common import (
    AUDIO_EXTS,
    DEFAULT_FRACTIONS,
    DatasetFormatError,
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


def _categories(meta: dict[str, Any], path: Path, line: int) -> list[list[str]]:
    value = meta.get("categories")
    if value in (None, "", []):
        return []
    if not isinstance(value, list):
        raise bad_row(path, line, "'categories' must be a list of category paths")
    out = []
    for entry in value:
        names = entry if isinstance(entry, list) else [entry]
        if not all(isinstance(n, str) for n in names):
            raise bad_row(path, line, "'categories' entries must be strings or lists of strings")
        parts = [n.strip() for part in names for n in part.split(">") if n.strip()]
        if parts:
            out.append(parts)
    return out


def _descriptors(root: Path) -> dict[str, list[Path]]:
    """``{amazon id: descriptor files}`` from ``acousticbrainz_descriptors/`` (name
    ``<amazon-id>_<36-character recording mbid>.json``)."""
    folder = root / "acousticbrainz_descriptors"
    out: dict[str, list[Path]] = defaultdict(list)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        stem = path.stem
        if len(stem) > 37 and stem[-37] == "_":
            out[stem[:-37]].append(path)
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
    audio_source: str = "audio",
    category_tags: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    meta_path = require_file(root / "mard_metadata.json", "MARD metadata")
    reviews_path = require_file(root / "mard_reviews.json", "MARD reviews")
    audio_root = Path(audio_root) if audio_root else first_existing(root / "audio") or root
    if audio_source not in ("audio", "descriptors"):
        raise DatasetFormatError(
            f"audio_source must be 'audio' or 'descriptors', not {audio_source!r}"
        )
    descriptors = _descriptors(root)
    if audio_source == "descriptors":
        audio_root = root / "acousticbrainz_descriptors"
        result.notes.append(
            f"audio side: AcousticBrainz descriptors ({FEATURE_SET}), "
            f"{sum(map(len, descriptors.values()))} file(s) for {len(descriptors)} album(s)"
        )

    albums: dict[str, dict[str, Any]] = {}
    categories: dict[str, list[list[str]]] = {}
    for line, meta in read_json_lines(meta_path):
        amazon_id = str(meta.get("amazon-id") or "").strip()
        if not amazon_id:
            raise bad_row(meta_path, line, "no 'amazon-id'")
        if amazon_id in albums:
            raise bad_row(meta_path, line, f"duplicate amazon-id {amazon_id!r}")
        albums[amazon_id] = meta
        categories[amazon_id] = _categories(meta, meta_path, line)

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
        if audio_source == "descriptors":
            files = descriptors.get(amazon_id, [])
        else:
            files = _album_audio(audio_root, amazon_id)
        paths = categories[amazon_id]
        extra: dict[str, Any] = {
            "amazon_id": amazon_id,
            "ratings": [r.get("overall") for r in album_reviews],
            "tracks": [p.name for p in files],
            "categories": [" > ".join(p) for p in paths],
            "acousticbrainz": [p.name for p in descriptors.get(amazon_id, [])],
        }
        if audio_source == "descriptors":
            extra["audio_features"] = FEATURE_SET
        for key in ("label", "first-release-year", "release-group-mbid", "artist-mbid"):
            if meta.get(key) not in (None, ""):
                extra[key.replace("-", "_")] = meta[key]
        common = {
            "split": split,
            "captions": [("review", r["reviewText"]) for r in album_reviews],
            "tags": _genres(meta) + ([n for p in paths for n in p[1:]] if category_tags else []),
            "album": str(meta.get("title") or ""),
            "artist": str(meta.get("artist") or ""),
            "source": NAME,
        }
        if not per_track:
            audio = files[0] if files else audio_root / amazon_id
            if files and audio_source == "descriptors":
                extra["mbid"] = files[0].stem[-36:]
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
                    extra=extra
                    | {"track": path.name}
                    | ({"mbid": path.stem[-36:]} if audio_source == "descriptors" else {}),
                    **common,
                )
            )
    if few:
        result.warnings.append(f"{few} album(s) with fewer than {min_reviews} review(s) left out")
    keep_present(result, items)
    return result
