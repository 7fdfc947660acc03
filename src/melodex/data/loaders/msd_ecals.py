"""MSD-eCALS: the Million Song Dataset subset with the tag vocabulary of TTMR (Doh et al., 2023).

Format of the TTMR release's ``ecals_annotation/`` folder (checked against the authors' loader,
``mtr/contrastive/dataset.py``: ``annotation.json`` maps track id -> entry with a ``tag`` list,
``ecals_track_split.json`` holds ``train_track`` / ``extra_track`` / ``valid_track`` /
``test_track``); looked for in ``root`` and ``root/ecals_annotation``, read tolerantly:

- Annotation, the first found of ``annotation.json``, ``annotation.jsonl``, ``annotation.csv``
  (or the ``annotation=`` option):

  * JSON: an object ``{track_id: entry}`` or a list of entries, where an entry is an object
    with the tags under ``tag`` / ``tags`` (a list, or one string of separated tags) and
    optionally ``track_id``, ``title``, ``artist_name`` / ``artist``, ``release`` / ``album``,
    ``year``, ``split``; an entry may also be the bare tag list;
  * JSONL: one such entry per line, with ``track_id``;
  * CSV: columns ``track_id`` and ``tag`` / ``tags`` (a list literal or ``|`` / ``;`` / ``,``
    separated), the other fields optional as above.

- Split, the first found of ``ecals_track_split.json`` (``{"train_track": [...],
  "valid_track": [...], "test_track": [...], "extra_track": [...]}``; also accepted: keys
  ``train``, ``valid`` / ``validation`` / ``val``, ``test``) or the files ``train.txt``,
  ``valid.txt``, ``test.txt`` (one track id a line), or the ``split_file=`` option. As in the
  TTMR code, ``extra_track`` joins train. Without any split file the annotation's own ``split``
  field is used; a track with neither is left out with a warning. A track in two split lists is
  an error.

- Audio (`melodex.data.loaders._msd_audio`): the release's 7digital previews, found through
  its two plain-dict pickles ``lastfm_annotation/MSD_id_to_7D_id.pkl`` and
  ``lastfm_annotation/7D_id_to_path.pkl`` (read without running any code: a pickle naming a
  class or function is refused) or through the ``track_paths=`` option (JSON ``{msd_id:
  path}`` or TSV); files are ``<audio_root>/<path>`` (default ``root/songs``), or with
  ``npy="ttmr"`` / ``npy="ttmr-pp"`` the pre-decoded waveforms ``<audio_root>/<path>.npy``
  (default ``root/npy``; float32 16 kHz for TTMR, int16 min-max scaled at 22,050 Hz for
  TTMR++, decoded as `melodex.data.waveforms` documents; ``npy_sample_rate=`` overrides the
  rate). Without a map, files named by MSD track id (``TRAAAAW128F429D538.mp3``, any audio
  extension, or ``.npy`` with ``npy=``) are searched under ``audio_root`` (default
  ``root/audio`` when it exists, else ``root``; MSD's nested ``A/A/A/`` folders work too).

- ``subset="multiquery"``: only the tracks listed in the release's
  ``ecals_annotation/multiquery_samples.json`` (the 1,000 test tracks of TTMR's caption
  retrieval, whose query is the track's tags joined by ", ", i.e. the item's tag text).

No file of the release is public outside Zenodo (record 7107130): the loader is tested on a
reconstruction from the authors' README record and code (``tests/fixtures/msd_ecals/``).

Tags are lower-cased; ``extra`` holds ``track_id``, ``year`` (when known; 0 means unknown in
the release), ``7digital_path`` and, for ``.npy`` audio, ``waveform``.
"""

from __future__ import annotations

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
    read_json_file,
    read_json_lines,
    read_lines,
    read_table,
)
from melodex.data.loaders._msd_audio import MsdAudio

NAME = "msd-ecals"
SPLIT_KEYS = {
    "train_track": "train",
    "extra_track": "train",
    "train": "train",
    "valid_track": "valid",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "test_track": "test",
    "test": "test",
}
ANNOTATION_NAMES = ("annotation.json", "annotation.jsonl", "annotation.csv")


def _first(entry: dict[str, Any], *names: str) -> Any:
    return next((entry[n] for n in names if entry.get(n) not in (None, "")), None)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _entry(track_id: str, raw: Any, path: Path, line: int | None) -> dict[str, Any]:
    """Normalise one annotation entry to ``{track_id, tags, title, artist, album, year, split}``."""
    if isinstance(raw, list):
        raw = {"tag": raw}
    if not isinstance(raw, dict):
        raise bad_row(path, line, f"entry of {track_id!r} must be an object or a tag list")
    tags = _first(raw, "tag", "tags")
    if isinstance(tags, str):
        tags = parse_list(tags, path, line or 0, "tag")
    if not isinstance(tags, list):
        raise bad_row(path, line, f"entry of {track_id!r} has no tag list ('tag' or 'tags')")
    split = _first(raw, "split")
    if split is not None and str(split).lower() not in SPLIT_KEYS:
        raise bad_row(path, line, f"entry of {track_id!r} has unknown split {split!r}")
    return {
        "track_id": track_id,
        "tags": [str(t) for t in tags],
        "title": _text(_first(raw, "title")),
        "artist": _text(_first(raw, "artist_name", "artist")),
        "album": _text(_first(raw, "release", "album")),
        "year": _first(raw, "year"),
        "split": SPLIT_KEYS[str(split).lower()] if split is not None else None,
    }


def read_annotation(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        out = []
        for line, row in read_table(path, required=("track_id",)):
            if "tag" not in row and "tags" not in row:
                raise bad_row(path, 1, "needs a 'tag' or 'tags' column")
            out.append(_entry(row["track_id"].strip(), dict(row), path, line))
        return out
    if path.suffix == ".jsonl":
        out = []
        for line, obj in read_json_lines(path):
            if not obj.get("track_id"):
                raise bad_row(path, line, "entry has no 'track_id'")
            out.append(_entry(str(obj["track_id"]), obj, path, line))
        return out
    data = read_json_file(path)
    if isinstance(data, dict):
        return [_entry(str(k), v, path, None) for k, v in data.items()]
    if isinstance(data, list):
        out = []
        for i, obj in enumerate(data):
            if not isinstance(obj, dict) or not obj.get("track_id"):
                raise bad_row(path, None, f"list entry {i} needs a 'track_id'")
            out.append(_entry(str(obj["track_id"]), obj, path, None))
        return out
    raise bad_row(path, None, "expected a JSON object or list")


def read_splits(root: Path, split_file: Path | None) -> tuple[dict[str, str], Path | None]:
    """``{track_id: split}`` from the split file(s), and the file read (None when none)."""
    splits: dict[str, str] = {}

    def add(track_id: str, split: str, where: str) -> None:
        old = splits.setdefault(track_id, split)
        if old != split:
            raise DatasetFormatError(f"{where}: track {track_id!r} is in both {old} and {split}")

    path = Path(split_file) if split_file else None
    if path is None:
        for folder in (root, root / "ecals_annotation"):
            path = first_existing(folder / "ecals_track_split.json", folder / "train.txt")
            if path:
                break
    if path is None:
        return splits, None
    if path.suffix == ".txt":
        for name in ("train", "valid", "test"):
            txt = path.with_name(f"{name}.txt")
            if txt.is_file():
                for number, line in read_lines(txt):
                    add(line, name, f"{txt}:{number}")
        return splits, path
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise bad_row(path, None, "expected an object of split name -> track id list")
    for key, ids in data.items():
        if key.lower() not in SPLIT_KEYS or not isinstance(ids, list):
            raise bad_row(path, None, f"unknown split key {key!r} or its value is not a list")
        for track_id in ids:
            add(str(track_id), SPLIT_KEYS[key.lower()], str(path))
    return splits, path


def read_multiquery(root: Path) -> set[str] | None:
    """The track ids of ``multiquery_samples.json`` (keys of an object, or a list), if present."""
    path = first_existing(
        root / "ecals_annotation" / "multiquery_samples.json", root / "multiquery_samples.json"
    )
    if path is None:
        return None
    data = read_json_file(path)
    if isinstance(data, dict):
        return {str(k) for k in data}
    if isinstance(data, list):
        return {str(v) for v in data}
    raise bad_row(path, None, "expected an object keyed by track id, or a list of ids")


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    annotation: Path | None = None,
    split_file: Path | None = None,
    track_paths: Path | None = None,
    npy: str | None = None,
    npy_sample_rate: int | None = None,
    subset: str | None = None,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    path = Path(annotation) if annotation else None
    if path is None:
        candidates = [f / n for f in (root, root / "ecals_annotation") for n in ANNOTATION_NAMES]
        path = first_existing(*candidates)
        if path is None:
            raise DatasetFormatError(f"no MSD-eCALS annotation file: looked for {candidates}")
    if subset not in (None, "multiquery"):
        raise DatasetFormatError(f"unknown MSD-eCALS subset {subset!r} (known: multiquery)")
    entries = read_annotation(path)
    splits, split_path = read_splits(root, split_file)
    if split_path is None:
        result.warnings.append("no split file found: using the annotation's 'split' field")
    keep_ids = read_multiquery(root) if subset else None
    if subset and keep_ids is None:
        raise DatasetFormatError(f"subset={subset!r} needs multiquery_samples.json under {root}")
    audio = MsdAudio(
        root, audio_root=audio_root, track_paths=track_paths, npy=npy,
        npy_sample_rate=npy_sample_rate,
    )  # fmt: skip
    result.notes.append(f"audio located by {audio.source} under {audio.folder}")

    items, unsplit, outside = [], 0, 0
    for entry in entries:
        track_id = entry["track_id"]
        if keep_ids is not None and track_id not in keep_ids:
            outside += 1
            continue
        split = splits.get(track_id, entry["split"]) if splits else entry["split"]
        if split is None:
            unsplit += 1
            continue
        extra = {"track_id": track_id} | ({"year": entry["year"]} if entry["year"] else {})
        items.append(
            make_item(
                id=f"msd:{track_id}",
                audio=audio.path(track_id),
                split=split,
                tags=entry["tags"],
                title=entry["title"],
                artist=entry["artist"],
                album=entry["album"],
                extra=extra | audio.extra(track_id),
                source=NAME,
            )
        )
    if unsplit:
        result.warnings.append(f"{unsplit} annotated track(s) in no split left out")
    if outside:
        result.warnings.append(f"{outside} track(s) outside subset {subset!r} left out")
    unmapped = audio.unmapped([it["extra"]["track_id"] for it in items])
    if unmapped:
        result.warnings.append(f"{unmapped} track(s) have no 7digital path in the map")
    keep_present(result, items)
    return result
