"""What every dataset loader shares: the result type, format errors, table readers, splits, texts.

Loaders build items with *absolute* audio paths; `melodex.data.loaders.write_loaded` makes them
relative to the manifest it writes. An item whose audio file is absent is left out of
``LoadResult.items`` and its id is listed in ``LoadResult.missing_audio`` (never a crash): a
manifest then always passes ``read_manifest(check_audio=True)``.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melodex.data.files import (
    DatasetFormatError,
    bad_row,
    read_json_file,
    read_json_lines,
    read_lines,
    read_table,
    read_text,
    text_lines,
)
from melodex.data.manifest import SPLITS, TEXT_KINDS
from melodex.errors import MelodexError

__all__ = [
    "AUDIO_EXTS",
    "DEFAULT_FRACTIONS",
    "DatasetFormatError",
    "LoadResult",
    "bad_row",
    "clean_tags",
    "first_existing",
    "hash_split",
    "index_audio",
    "keep_present",
    "make_item",
    "parse_bool",
    "parse_float",
    "parse_list",
    "read_json_file",
    "read_json_lines",
    "read_lines",
    "read_table",
    "read_text",
    "require_file",
    "text_entry",
    "text_lines",
]

AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".au", ".aiff", ".aif")

# Finer text kinds named by the dataset descriptions, and the manifest kind each falls back to
# while `melodex.data.manifest.TEXT_KINDS` does not accept it. The finer kind is always kept in
# the text's ``source`` field, so a consumer can tell a review from a caption either way.
FALLBACK_KIND = {"review": "caption", "mined": "caption", "pseudo-caption": "caption"}

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class LoadResult:
    """What a loader returns.

    ``items`` are manifest items (audio paths absolute until `write_loaded`); ``missing_audio``
    the ids of items left out because their audio file is absent (``missing_items`` the items
    themselves; ``every_item`` all of them in dataset order, for a manifest from metadata
    alone); ``warnings`` what a user
    should look at (rows skipped, fallbacks taken); ``notes`` what was read and how (files,
    where the audio was looked for).
    """

    dataset: str
    items: list[dict[str, Any]] = field(default_factory=list)
    missing_audio: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    every_item: list[dict[str, Any]] = field(default_factory=list)

    def split_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SPLITS, 0)
        for item in self.items:
            counts[item["split"]] += 1
        return counts


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetFormatError(f"{what} not found: {path}")
    return path


def first_existing(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def parse_list(value: str, path: Path, line: int, column: str) -> list[str]:
    """A list cell: a Python/JSON list literal (``"['a', 'b']"``), or ``|``, ``;``, ``,``
    separated words. Empty cell -> ``[]``."""
    value = value.strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise bad_row(
                path, line, f"column {column!r} is not a list literal: {value[:60]!r}"
            ) from None
        if not isinstance(parsed, list | tuple):
            raise bad_row(path, line, f"column {column!r} must be a list, got {value[:60]!r}")
        return [str(v).strip() for v in parsed if str(v).strip()]
    sep = next((s for s in ("|", ";") if s in value), ",")
    return [v.strip() for v in value.split(sep) if v.strip()]


def parse_bool(value: str, path: Path, line: int, column: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise bad_row(path, line, f"column {column!r} must be True/False, got {value!r}")


def parse_float(value: str, path: Path, line: int, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise bad_row(path, line, f"column {column!r} must be a number, got {value!r}") from None


def hash_split(key: str, *, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """A split drawn from a hash of ``seed`` and ``key``: stable across runs, machines and the
    order of the rows, and the same for every item sharing ``key``."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise MelodexError(
            f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}"
        )
    digest = hashlib.sha1(f"{seed}\0{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def text_entry(kind: str, text: str, *, source: str | None = None) -> dict[str, str]:
    """One ``texts`` entry; a finer kind the manifest does not accept yet falls back
    (`FALLBACK_KIND`) and is kept as ``source``."""
    entry = {"kind": kind if kind in TEXT_KINDS else FALLBACK_KIND[kind], "text": text.strip()}
    if source or entry["kind"] != kind:
        entry["source"] = source or kind
    return entry


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Lower-case, whitespace-collapsed, de-duplicated tags in first-seen order."""
    out = (" ".join(str(t).lower().split()) for t in tags)
    return list(dict.fromkeys(t for t in out if t))


def make_item(
    *,
    id: str,
    audio: Path,
    split: str,
    captions: Sequence[tuple[str, str]] = (),
    tags: Sequence[str] = (),
    title: str | None = None,
    artist: str | None = None,
    album: str | None = None,
    start: float | None = None,
    end: float | None = None,
    extra: dict[str, Any] | None = None,
    source: str,
) -> dict[str, Any]:
    """A manifest item. ``captions`` are ``(kind, text)`` pairs; a tag text (the tags joined by
    ", ") and a metadata text ("title - artist - album") are added when there is something to
    say. ``source`` names the dataset on every text."""
    tags = clean_tags(tags)
    texts = [text_entry(kind, t, source=f"{source}:{kind}") for kind, t in captions if t.strip()]
    if tags:
        texts.append(text_entry("tag", ", ".join(tags), source=f"{source}:tags"))
    meta = " - ".join(s.strip() for s in (title, artist, album) if s and s.strip())
    if meta:
        texts.append(text_entry("metadata", meta, source=f"{source}:metadata"))
    item: dict[str, Any] = {"id": id, "audio": str(audio), "start": start, "end": end}
    item.update(texts=texts, tags=tags, split=split)
    for name, value in (("title", title), ("artist", artist), ("album", album)):
        if value and value.strip():
            item[name] = value.strip()
    item["extra"] = dict(extra or {})
    return item


def keep_present(result: LoadResult, items: Iterable[dict[str, Any]]) -> None:
    """Append items whose audio file exists (and is not empty) to ``result.items``; list the
    others in ``result.missing_audio`` with one summary warning."""
    missing_paths: list[str] = []
    empty = 0
    for item in items:
        result.every_item.append(item)
        audio = Path(item["audio"])
        try:
            size = audio.stat().st_size if audio.is_file() else None
        except OSError:
            size = None
        if size:
            result.items.append(item)
            continue
        empty += size == 0
        result.missing_audio.append(item["id"])
        result.missing_items.append(item)
        missing_paths.append(str(audio))
    if missing_paths:
        shown = ", ".join(missing_paths[:3]) + (", ..." if len(missing_paths) > 3 else "")
        note = f" ({empty} of them empty files)" if empty else ""
        result.warnings.append(
            f"{len(missing_paths)} item(s) left out for missing audio{note}: {shown}"
        )


def index_audio(root: Path, *, exts: Sequence[str] = AUDIO_EXTS) -> dict[str, Path]:
    """Map each audio file's stem under ``root`` (recursively) to its path. On a stem found
    twice, the extension earlier in ``exts`` wins, then the shorter path."""
    found: dict[str, Path] = {}
    rank = {e: i for i, e in enumerate(exts)}
    if not root.is_dir():
        return found
    for folder, _dirs, files in os.walk(root):
        for name in files:
            suffix = os.path.splitext(name)[1].lower()
            if suffix not in rank:
                continue
            path = Path(folder) / name
            old = found.get(path.stem)
            if old is None or (rank[suffix], len(str(path))) < (
                rank[old.suffix.lower()],
                len(str(old)),
            ):
                found[path.stem] = path
    return found
