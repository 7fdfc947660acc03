"""What a dataset load found, as a report a person (or a script) can check before training.

``melodex data load`` prints it: how many items, texts of each kind, tags, splits, which audio
is missing and every warning, so a release can be checked from its metadata alone before its
audio is downloaded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from melodex.data.loaders import LoadResult

__all__ = ["load_report"]


def _reworded(warning: str) -> str:
    """The loaders' missing-audio warning, for a manifest that keeps those items."""
    return warning.replace("left out for missing audio", "written without their audio", 1)


def load_report(
    result: LoadResult,
    *,
    manifest: str | Path | None = None,
    include_missing: bool = False,
    top_tags: int = 10,
) -> dict[str, Any]:
    """The report of one load, JSON-serialisable.

    Keys: ``dataset``, ``manifest`` (path written, or None), ``items_written``,
    ``items_with_audio``, ``missing_audio`` (count) and ``missing_audio_ids`` (all of them),
    ``splits`` (items written per split), ``texts`` (texts per kind), ``text_sources`` (per
    finer origin, e.g. ``mard:review``), ``tags`` (distinct tags), ``top_tags`` (``[tag, items]``
    pairs), ``items_without_text``, ``warnings``, ``notes``.
    """
    written = result.every_item if include_missing else result.items
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    no_text = 0
    for item in written:
        texts = item.get("texts", [])
        no_text += not texts
        for text in texts:
            kinds[text["kind"]] += 1
            sources[text.get("source", text["kind"])] += 1
        tags.update(item.get("tags", []))
        splits[item["split"]] += 1
    return {
        "dataset": result.dataset,
        "manifest": str(manifest) if manifest is not None else None,
        "items_written": len(written),
        "items_with_audio": len(result.items),
        "missing_audio": len(result.missing_audio),
        "missing_audio_ids": list(result.missing_audio),
        "splits": {s: splits.get(s, 0) for s in ("train", "valid", "test")},
        "texts": dict(kinds.most_common()),
        "text_sources": dict(sources.most_common()),
        "tags": len(tags),
        "top_tags": [[t, n] for t, n in tags.most_common(top_tags)],
        "items_without_text": no_text,
        "warnings": [_reworded(w) for w in result.warnings]
        if include_missing
        else list(result.warnings),
        "notes": list(result.notes),
    }
