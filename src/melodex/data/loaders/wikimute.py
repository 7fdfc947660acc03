"""WikiMuTe (Weck et al., 2024): Wikimedia Commons music audio with descriptions mined from
Wikipedia, as short aspects ("upbeat", "brass section") and whole sentences.

The release (Zenodo 10.5281/zenodo.10223362, checked against the authors' README and loader
script) has three variants in ``data/``: ``all.csv`` (everything collected), ``filtered_sf.csv``
(self-filtered) and ``filtered_mc.csv`` (filtered with MusicCaps), each with the columns
``file, pageid, aspects, sentences, audio_url, url``, aspects and sentences as Python list
literals, one row per (audio file, Wikipedia page); rows of one file are merged, as the authors'
loader does. ``variant=`` picks one of them (default ``all``) when they are present in ``root``
or ``root/data``; otherwise every ``*.csv`` in ``root`` is read (or the ``files=`` option). The
reader is tolerant of other column names:

  * the audio file name: the first of ``filename``, ``file``, ``file_name``, ``audio``,
    ``audio_file``, ``audio_path`` (a leading ``File:`` is dropped);
  * ``aspects`` (or ``aspect_list``) and ``sentences`` (or ``sentence``, ``descriptions``): each a
    Python/JSON list literal, or separated (aspects by ``|`` / ``;`` / ``,``,
    sentences by ``|`` only);
  * optional ``split`` (``train`` / ``valid`` / ``val`` / ``validation`` / ``test``),
    ``page`` / ``page_title`` / ``title`` / ``pageid`` (Wikipedia page), ``url`` (the
    page's URL) and ``audio_url`` (where the audio file is downloaded from).

- Audio: ``audio_root / filename`` (default ``root/audio`` when it exists, else ``root``), with
  Wikimedia's spaces-as-underscores variant tried too.

Texts: each mined sentence is a caption-like text of the finer kind ``mined`` (stored as
``caption`` with ``source`` ``wikimute:mined`` while the manifest does not accept ``mined``);
the aspects become the tags (lower-cased) and one tag text.

``extra`` holds ``file``, ``pages`` (every page id or title, in order), ``urls`` (every
Wikipedia page URL: a file used on several pages has several) and ``audio_url`` (the first, as
the authors' loader keeps it; fetch the audio from it).

No csv of the release is public outside Zenodo (record 10223363): the loader is tested on a
reconstruction from the authors' README and ``wikimute.py`` (Bomme/wikimute, commit 246cba2;
``tests/fixtures/wikimute/``).

Split: the ``split`` column when present; else the file's name when it contains ``train``,
``val`` or ``test``; else a seeded hash of the audio file name (``fractions``, default
80/10/10) with a warning, since the rows then carry no official split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from melodex.data.loaders._common import (
    DEFAULT_FRACTIONS,
    DatasetFormatError,
    LoadResult,
    bad_row,
    first_existing,
    hash_split,
    keep_present,
    make_item,
    parse_list,
    read_table,
)

NAME = "wikimute"
AUDIO_COLUMNS = ("filename", "file", "file_name", "audio", "audio_file", "audio_path")
ASPECT_COLUMNS = ("aspects", "aspect_list", "aspect")
SENTENCE_COLUMNS = ("sentences", "sentence", "descriptions", "description")
PAGE_COLUMNS = ("page", "page_title", "title", "wiki_page", "pageid")
VARIANTS = ("all", "filtered_sf", "filtered_mc")
SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid"}
SPLIT_NAMES["test"] = "test"


def _pick(row: dict[str, str], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in row), None)


def _split_from_name(path: Path) -> str | None:
    stem = path.stem.lower()
    for word, split in (("train", "train"), ("val", "valid"), ("test", "test")):
        if word in stem:
            return split
    return None


def _sentences(value: str, path: Path, line: int, column: str) -> list[str]:
    """A list literal, or ``|``-separated sentences (commas and semicolons belong to them)."""
    if value.strip().startswith("["):
        return parse_list(value, path, line, column)
    return [s.strip() for s in value.split("|") if s.strip()]


def load(
    root: Path,
    *,
    audio_root: Path | None = None,
    files: Sequence[Path] | None = None,
    variant: str = "all",
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> LoadResult:
    root = Path(root)
    result = LoadResult(NAME)
    if variant not in VARIANTS:
        raise DatasetFormatError(f"unknown WikiMuTe variant {variant!r}; one of {VARIANTS}")
    release = [d / f"{v}.csv" for d in (root, root / "data") for v in VARIANTS]
    if files:
        paths = [Path(f) for f in files]
    elif any(p.is_file() for p in release):
        chosen = [
            d / f"{variant}.csv" for d in (root, root / "data") if (d / f"{variant}.csv").is_file()
        ]
        if not chosen:
            raise DatasetFormatError(f"{root}: no {variant}.csv among the WikiMuTe variants")
        paths = chosen[:1]
    else:
        paths = sorted(root.glob("*.csv"))
    if not paths:
        raise DatasetFormatError(f"no WikiMuTe csv file in {root}")
    audio_root = Path(audio_root) if audio_root else first_existing(root / "audio") or root

    merged: dict[str, dict[str, Any]] = {}
    hashed = conflicts = 0
    for path in paths:
        for line, row in read_table(path):
            audio_col = _pick(row, AUDIO_COLUMNS)
            if audio_col is None:
                raise bad_row(path, 1, f"no audio file column (one of {AUDIO_COLUMNS})")
            name = row[audio_col].strip().removeprefix("File:")
            if not name:
                raise bad_row(path, line, f"empty {audio_col!r}")
            aspects_col, sentences_col = _pick(row, ASPECT_COLUMNS), _pick(row, SENTENCE_COLUMNS)
            if aspects_col is None and sentences_col is None:
                raise bad_row(path, 1, f"needs an aspects {ASPECT_COLUMNS} or sentences column")
            aspects = parse_list(row[aspects_col], path, line, aspects_col) if aspects_col else []
            sentences = (
                _sentences(row[sentences_col], path, line, sentences_col) if sentences_col else []
            )
            split_text = row.get("split", "").strip().lower()
            if split_text and split_text not in SPLIT_NAMES:
                raise bad_row(path, line, f"unknown split {row['split']!r}")
            split = SPLIT_NAMES.get(split_text) or _split_from_name(path)
            entry = merged.setdefault(
                name, {"aspects": [], "sentences": [], "pages": [], "urls": [], "split": split}
            )
            if split and entry["split"] and split != entry["split"]:
                raise bad_row(path, line, f"{name!r} already in split {entry['split']}")
            entry["split"] = entry["split"] or split
            entry["aspects"] += aspects
            entry["sentences"] += [s for s in sentences if s not in entry["sentences"]]
            page_col = _pick(row, PAGE_COLUMNS)
            if page_col and row[page_col].strip() and row[page_col].strip() not in entry["pages"]:
                entry["pages"].append(row[page_col].strip())
            url = row.get("url", "").strip()
            if url and url not in entry["urls"]:
                entry["urls"].append(url)
            audio_url = row.get("audio_url", "").strip()
            if audio_url:
                entry.setdefault("audio_url", audio_url)
                if audio_url != entry["audio_url"]:
                    conflicts += 1

    items = []
    for name, entry in merged.items():
        if not entry["aspects"] and not entry["sentences"]:
            continue
        split = entry["split"]
        if split is None:
            split, hashed = hash_split(name, seed=seed, fractions=fractions), hashed + 1
        path = audio_root / name
        if not path.is_file() and (audio_root / name.replace(" ", "_")).is_file():
            path = audio_root / name.replace(" ", "_")
        extra = {"file": name, "pages": entry["pages"], "urls": entry["urls"]}
        if "audio_url" in entry:
            extra["audio_url"] = entry["audio_url"]
        items.append(
            make_item(
                id=f"wikimute:{name}",
                audio=path,
                split=split,
                captions=[("mined", s) for s in entry["sentences"]],
                tags=entry["aspects"],
                extra=extra,
                source=NAME,
            )
        )
    if conflicts:
        result.warnings.append(
            f"{conflicts} row(s) gave another audio_url for a file already seen; kept the first"
        )
    if hashed:
        result.warnings.append(
            f"{hashed} item(s) without an official split: seeded hash split (seed={seed})"
        )
    keep_present(result, items)
    return result
