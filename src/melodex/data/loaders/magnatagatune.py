"""MagnaTagATune (Law et al., 2009): 25,863 clips of ~29 s with 188 binary crowd tags.

Files expected under ``root`` (the distribution's names):

- ``annotations_final.csv``: **tab-separated**, fields usually double-quoted; header ``clip_id``,
  the 188 tag names, ``mp3_path``; each row the clip id, ``0``/``1`` per tag, and the clip's path
  relative to the audio folder (``f/american_bach_soloists-...-0-29.mp3``).
- ``clip_info_final.csv`` (optional): tab-separated, header ``clip_id``, ``track_number``,
  ``title``, ``artist``, ``album``, ``url``, ``segmentStart``, ``segmentEnd``, ``original_url``,
  ``mp3_path``; gives each clip's title, artist and album. Without it a warning is given.
- Audio: the sixteen folders ``0`` ... ``9``, ``a`` ... ``f`` from ``mp3.zip.001-003``, under
  ``audio_root`` (default ``root/mp3`` when it exists, else ``root``). The release's three broken
  (zero-byte) clips, ids 35644, 55753 and 57881 (`BROKEN_CLIP_IDS`, excluded by every public
  preprocessing script), count as missing audio.

Split: the usual 12:1:3 split by folder (the first character of ``mp3_path``): ``0``-``b`` train,
``c`` valid, ``d``-``f`` test. Clips of one song lie in one folder, so no song spans two splits.
With ``split_lists=DIR``, the split is instead read from the common "pub" lists of Lee et al. /
Won et al. (``train_list_pub.cP``, ``valid_list_pub.cP``, ``test_list_pub.cP`` in ``DIR``:
Python-2 pickles of path lists, read without running code; jongpillee/music_dataset_split
``MTAT_split/``): 15,244 / 1,529 / 4,332 clips, the folder split restricted to clips with a top-50
tag and more than 29.1 s of audio. Clips in no list are left out (counted in a warning).

The annotation csv itself is not public outside the release (mirg.city.ac.uk), so the loader is
tested on the real "pub" list and top-50 tag files and a reconstruction of the csv from its real
188-column header (``tests/fixtures/magnatagatune/README.md``).

Options:

- ``merge_synonyms`` (default False): map each tag of a group in `SYNONYMS` to the group's first
  name before anything else (e.g. ``"no vocals"``, ``"no voice"``, ``"instrumental"`` ->
  ``"no vocal"``).
- ``top_n`` (default None: all tags): keep only the ``top_n`` most frequent tags (after merging),
  counted over every row of ``annotations_final.csv`` whether or not its audio is present, ties
  broken by name (``top_n=50`` gives the standard top-50 vocabulary).
- ``tag_list`` (default None): keep only the tags of a named list or file
  (`melodex.data.tag_lists`; ``tag_list="mtt-top50"`` gives the pub protocol's 50 tags), after
  merging; a listed tag absent from the csv header is an error.
- ``drop_untagged`` (default True): leave out clips with no tag left (about 16% of the clips
  have none of the top-50 tags); they are counted in a warning.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from melodex.data.loaders._common import (
    DatasetFormatError,
    LoadResult,
    bad_row,
    first_existing,
    keep_present,
    make_item,
    read_table,
    require_file,
)
from melodex.data.plain_pickle import load_plain_pickle
from melodex.data.tag_lists import read_tag_list

NAME = "magnatagatune"
BROKEN_CLIP_IDS = ("35644", "55753", "57881")
SPLIT_LISTS = {
    "train": "train_list_pub.cP",
    "valid": "valid_list_pub.cP",
    "test": "test_list_pub.cP",
}
TRAIN_FOLDERS = "0123456789ab"
VALID_FOLDERS = "c"
TEST_FOLDERS = "def"

# Spelling variants and plurals, then near-equivalent descriptions; the first name is kept.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("beat", "beats"),
    ("chant", "chanting"),
    ("choir", "choral"),
    ("classical", "clasical", "classic"),
    ("drums", "drum"),
    ("electronic", "electro", "electronica", "electric"),
    ("fast", "fast beat", "quick"),
    ("female vocal", "female", "female singer", "female singing", "female vocals",
     "female voice", "woman", "woman singing", "women"),
    ("flute", "flutes"),
    ("guitar", "guitars"),
    ("hard rock", "hard"),
    ("harpsichord", "harpsicord"),
    ("heavy metal", "heavy", "metal"),
    ("horns", "horn"),
    ("indian", "india"),
    ("jazz", "jazzy"),
    ("male vocal", "male", "male singer", "male vocals", "male voice", "man", "man singing",
     "men"),
    ("no beat", "no drums"),
    ("no vocal", "no singer", "no singing", "no vocals", "no voice", "no voices",
     "instrumental"),
    ("opera", "operatic"),
    ("orchestra", "orchestral"),
    ("quiet", "silence"),
    ("singing", "singer"),
    ("space", "spacey"),
    ("strings", "string"),
    ("synth", "synthesizer"),
    ("violin", "violins"),
    ("vocal", "vocals", "voice", "voices"),
    ("weird", "strange"),
)  # fmt: skip
SYNONYM_OF = {name: group[0] for group in SYNONYMS for name in group}


def split_of_folder(folder: str) -> str | None:
    folder = folder.lower()
    if len(folder) != 1:
        return None
    if folder in TRAIN_FOLDERS:
        return "train"
    if folder in VALID_FOLDERS:
        return "valid"
    return "test" if folder in TEST_FOLDERS else None


def read_split_lists(folder: Path) -> dict[str, str]:
    """``{mp3_path: split}`` from the pub split lists (entries end ``.npy``; read as ``.mp3``)."""
    out: dict[str, str] = {}
    for split, name in SPLIT_LISTS.items():
        path = folder / name
        paths = load_plain_pickle(path, what="MagnaTagATune split list")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise DatasetFormatError(f"{path}: expected a list of clip paths")
        for entry in paths:
            mp3 = entry[: -len(".npy")] + ".mp3" if entry.endswith(".npy") else entry
            if out.setdefault(mp3, split) != split:
                raise DatasetFormatError(f"{path}: {entry} is also in {out[mp3]}")
    return out


def _clip_info(path: Path, result: LoadResult) -> dict[str, dict[str, str]]:
    if not path.is_file():
        result.warnings.append(f"{path} not found: items have no title, artist or album")
        return {}
    return {
        row["clip_id"].strip(): row
        for _, row in read_table(path, delimiter="\t", required=("clip_id",))
    }


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    top_n: int | None = None,
    merge_synonyms: bool = False,
    tag_list: str | Path | None = None,
    split_lists: Path | None = None,
    drop_untagged: bool = True,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    annotations = require_file(root / "annotations_final.csv", "MagnaTagATune annotations")
    audio_root = Path(audio_root) if audio_root else first_existing(root / "mp3") or root
    info = _clip_info(root / "clip_info_final.csv", result)

    listed = read_split_lists(Path(split_lists)) if split_lists else None
    rows = []
    header: set[str] = set()
    for line, row in read_table(annotations, delimiter="\t", required=("clip_id", "mp3_path")):
        if not header:
            header = {n.strip().lower() for n in row} - {"clip_id", "mp3_path"}
        tags = []
        for name, value in row.items():
            if name in ("clip_id", "mp3_path"):
                continue
            if value.strip() not in ("0", "1"):
                raise bad_row(annotations, line, f"tag {name!r} must be 0 or 1, got {value!r}")
            if value.strip() == "1":
                tag = name.strip().lower()
                tags.append(SYNONYM_OF.get(tag, tag) if merge_synonyms else tag)
        clip_id, mp3_path = row["clip_id"].strip(), row["mp3_path"].strip()
        split = split_of_folder(mp3_path.split("/")[0]) if "/" in mp3_path else None
        if not clip_id or split is None:
            problem = (
                f"need a clip_id and an mp3_path in folders 0-f, got {clip_id!r}, {mp3_path!r}"
            )
            raise bad_row(annotations, line, problem)
        if listed is not None:
            split = listed.get(mp3_path)
            if split is None:
                continue
        rows.append((clip_id, mp3_path, split, list(dict.fromkeys(tags))))
    if listed is not None:
        result.notes.append(f"split from the pub lists in {split_lists}: {len(rows)} clip(s)")
        if len(rows) < len(listed):
            result.warnings.append(
                f"{len(listed) - len(rows)} listed clip(s) are not in {annotations.name}"
            )

    if tag_list is not None:
        wanted = read_tag_list(tag_list)
        merged = {SYNONYM_OF.get(t, t) for t in header} if merge_synonyms else header
        unknown = [t for t in wanted if t not in merged]
        if unknown:
            raise DatasetFormatError(
                f"tag list {tag_list} names tag(s) not in {annotations.name}: {unknown[:5]}"
            )
        keep_listed = set(wanted)
        rows = [(c, p, s, [t for t in tags if t in keep_listed]) for c, p, s, tags in rows]
        result.notes.append(f"kept the {len(wanted)} tags of {tag_list}")
    if top_n is not None:
        counts = Counter(t for *_, tags in rows for t in tags)
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        keep = set(ranked[:top_n])
        rows = [(c, p, s, [t for t in tags if t in keep]) for c, p, s, tags in rows]
        result.warnings.append(f"kept the {len(keep)} most frequent tags (top_n={top_n})")

    items, untagged = [], 0
    for clip_id, mp3_path, split, tags in rows:
        if not tags and drop_untagged:
            untagged += 1
            continue
        meta = info.get(clip_id, {})
        extra = {"clip_id": int(clip_id) if clip_id.isdigit() else clip_id}
        for key in ("track_number", "segmentStart", "segmentEnd", "url"):
            if meta.get(key, "").strip():
                extra[key] = meta[key].strip()
        items.append(
            make_item(
                id=f"mtt:{clip_id}",
                audio=audio_root / mp3_path,
                split=split,
                tags=tags,
                title=meta.get("title"),
                artist=meta.get("artist"),
                album=meta.get("album"),
                extra=extra,
                source=NAME,
            )
        )
    if untagged:
        result.warnings.append(f"{untagged} clip(s) without any tag left out (drop_untagged)")
    keep_present(result, items)
    return result
