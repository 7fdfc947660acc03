"""The manifest: one JSON object per line describing a track, its texts and its tags.

Fields (others may be added; readers must keep unknown fields):

- ``id`` (str), ``audio`` (path relative to the manifest's folder), ``start`` / ``end`` (seconds or
  null for the whole file);
- ``texts``: list of ``{"kind": ..., "text": str}`` with kind one of caption, tag, review,
  metadata, pseudo-caption, mined;
- ``tags``: list of lower-case strings; ``title``, ``artist``, ``album`` (str);
- ``split``: ``"train" | "valid" | "test"``;
- ``extra``: dict of anything else (the demo corpus puts bpm, key, instruments, ... there).

A manifest is JSONL (``.jsonl``) or Parquet (``.parquet``: the same fields as columns, ``texts``
a list of structs, ``extra`` a JSON string); both read and write through the functions here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError

SPLITS = ("train", "valid", "test")
TEXT_KINDS = ("caption", "tag", "review", "metadata", "pseudo-caption", "mined")
REQUIRED = ("id", "audio", "texts", "tags", "split")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _write_parquet(path: Path, tmp: Path, items: Iterable[Mapping[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for item in items:
        row = dict(item)
        row["extra"] = json.dumps(row.get("extra", {}), ensure_ascii=False)
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows), tmp)


def _read_parquet_lines(path: Path) -> list[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several kinds
        raise MelodexError(f"{path}: unreadable Parquet manifest: {exc}") from exc
    out = []
    for number, row in enumerate(rows, start=1):
        row = {k: v for k, v in row.items() if v is not None or k in ("start", "end")}
        if isinstance(row.get("extra"), str):
            with contextlib.suppress(json.JSONDecodeError):  # validate_item reports it
                row["extra"] = json.loads(row["extra"])
        out.append((number, row))
    return out


def write_manifest(path: str | Path, items: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``items`` to ``path`` (JSONL, or Parquet by extension) atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    if _is_parquet(path):
        _write_parquet(path, tmp, items)
        os.replace(tmp, path)
        return path
    with tmp.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(dict(item), ensure_ascii=False, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def validate_item(item: Any, *, root: Path | None = None) -> list[str]:
    """Return the problems of one manifest entry (empty when it is valid).

    With ``root`` (the manifest's folder) the audio file must also exist.
    """
    if not isinstance(item, dict):
        return [f"expected a JSON object, got {type(item).__name__}"]
    problems = [f"missing field {name!r}" for name in REQUIRED if name not in item]
    if "id" in item and (not isinstance(item["id"], str) or not item["id"]):
        problems.append("'id' must be a non-empty string")
    audio = item.get("audio")
    if "audio" in item and (not isinstance(audio, str) or not audio):
        problems.append("'audio' must be a non-empty string")
    elif isinstance(audio, str) and root is not None and not (root / audio).is_file():
        problems.append(f"audio file missing: {root / audio}")
    if "split" in item and item["split"] not in SPLITS:
        problems.append(f"unknown split {item['split']!r} (expected one of {list(SPLITS)})")
    texts = item.get("texts")
    if "texts" in item and not isinstance(texts, list):
        problems.append("'texts' must be a list")
    for i, text in enumerate(texts if isinstance(texts, list) else []):
        if not isinstance(text, dict):
            problems.append(f"texts[{i}] must be an object")
            continue
        if text.get("kind") not in TEXT_KINDS:
            problems.append(f"texts[{i}] has unknown kind {text.get('kind')!r}")
        if not isinstance(text.get("text"), str) or not text["text"].strip():
            problems.append(f"texts[{i}] has empty text")
    tags = item.get("tags")
    if "tags" in item and (
        not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)
    ):
        problems.append("'tags' must be a list of non-empty strings")
    elif isinstance(tags, list) and any(t != t.lower() for t in tags):
        problems.append("'tags' must be lower-case")
    for name in ("start", "end"):
        value = item.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.append(f"{name!r} must be a number or null")
    if "extra" in item and not isinstance(item["extra"], dict):
        problems.append("'extra' must be an object")
    return problems


def _entries(path: Path, errors: list[str]) -> list[tuple[int, Any]]:
    """(line or row number, parsed object) pairs; JSON syntax errors go to ``errors``."""
    if _is_parquet(path):
        return _read_parquet_lines(path)
    out = []
    try:
        with path.open("rb") as fh:
            raw_lines = list(fh)
    except OSError as exc:
        raise MelodexError(f"{path}: cannot read manifest: {exc.strerror or exc}") from exc
    for number, raw in enumerate(raw_lines, start=1):
        try:  # line by line, so one bad byte names its line; a BOM may open the file
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            errors.append(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line)")
            continue
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{number}: invalid JSON ({exc.msg})")
        except (ValueError, RecursionError) as exc:  # a 5000-digit number, [[[[... 100k deep
            errors.append(f"{path}:{number}: invalid JSON ({exc})")
    return out


def read_manifest(path: str | Path, *, check_audio: bool = True) -> list[dict[str, Any]]:
    """Read and validate a JSONL or Parquet manifest.

    Raises `MelodexError` listing every bad line (Parquet: row) as ``path:LINE: problem``; blank
    lines are allowed; nothing is dropped silently.
    With ``check_audio`` each entry's audio file must exist beside the manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise MelodexError(f"manifest not found: {path}")
    root = path.parent if check_audio else None
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, item in _entries(path, errors):
        problems = validate_item(item, root=root)
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            if item["id"] in seen:
                problems.append(f"duplicate id {item['id']!r} (first on line {seen[item['id']]})")
            seen.setdefault(item["id"], number)
        errors.extend(f"{path}:{number}: {problem}" for problem in problems)
        if not problems:
            items.append(item)
    if errors:
        raise MelodexError(f"{len(errors)} problem(s) in manifest:\n" + "\n".join(errors))
    return items
