"""Texts a user names (reviews, captions, tags, mined sentences), embedded once beside the
library, for ``describe`` to rank against a track: "upload music, get the closest reviews".

A text set is read from a melodex manifest (JSONL or Parquet: each item's ``texts`` with their
kinds) or a plain ``.txt`` file (one text a line). Its embeddings are kept in
``<library>/text-sets/<key>.npz``, the key naming the file (resolved path, size, modification
time) and the model, so a changed file or another model embeds again and nothing else does.
Each text keeps its source: the manifest item's id (or the line number) and the kind.
The server offers the sets a library holds by key (:func:`held_text_sets`), so a web client
chooses one without ever naming a path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError

FOLDER = "text-sets"
#: a cache key: 20 hex digits of a SHA-1 (only such names are read from the folder)
KEY = re.compile(r"[0-9a-f]{20}")


@dataclass
class TextSet:
    """Texts, where each came from, and their embeddings (N, D)."""

    file: str
    texts: list[str]
    items: list[str]
    kinds: list[str]
    vectors: np.ndarray

    def rank(self, vector: np.ndarray, *, k: int, kinds: set[str] | None = None) -> list[dict]:
        """The ``k`` texts nearest ``vector``: text, score, item, kind (best first)."""
        scores = self.vectors @ np.asarray(vector, np.float32)
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order.tolist():
            if kinds is not None and self.kinds[i] not in kinds:
                continue
            out.append({"text": self.texts[i], "score": float(scores[i]),
                        "item": self.items[i], "kind": self.kinds[i]})  # fmt: skip
            if len(out) == k:
                break
        return out


def read_texts(file: str | Path) -> tuple[list[str], list[str], list[str]]:
    """(texts, items, kinds) of a manifest or a .txt file (duplicates of one item kept once)."""
    path = Path(os.path.expanduser(file))
    if not path.is_file():
        raise MelodexError(f"{path}: no such text file or manifest")
    texts, items, kinds = [], [], []
    if path.suffix.lower() == ".txt":
        for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if line.strip():
                texts.append(line.strip())
                items.append(f"line {n}")
                kinds.append("text")
        return texts, items, kinds
    from melodex.data.manifest import read_manifest

    for item in read_manifest(path, check_audio=False):
        seen = set()
        for entry in item.get("texts") or []:
            text = str(entry.get("text", "")).strip()
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
                items.append(str(item.get("id")))
                kinds.append(str(entry.get("kind", "text")))
    return texts, items, kinds


def load_text_set(file: str | Path, *, model: Any, folder: Path | None) -> TextSet:
    """The text set of ``file`` embedded with ``model``: from the cache in ``folder`` (the
    library folder; None keeps nothing) when the file and model are unchanged."""
    path = Path(os.path.expanduser(file)).resolve()
    if not path.is_file():
        raise MelodexError(f"{path}: no such text file or manifest")
    key = _key(path, model)
    cache = None if folder is None else folder / FOLDER / f"{key}.npz"
    if cache is not None and cache.is_file():
        return _read_cache(cache)
    texts, items, kinds = read_texts(path)
    if not texts:
        raise MelodexError(f"{path}: no texts in it")
    vectors = np.asarray(model.encode_text(texts), np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        meta = json.dumps({"file": str(path), "texts": texts, "items": items, "kinds": kinds,
                           "model": model.identity})  # fmt: skip
        np.savez(tmp, vectors=vectors, meta=np.asarray(meta))
        os.replace(tmp, cache)
    return TextSet(str(path), texts, items, kinds, vectors)


def _key(path: Path, model: Any) -> str:
    """The cache key of a resolved text file for a model: its path, size, mtime and the model."""
    st = path.stat()
    blob = json.dumps([str(path), st.st_size, st.st_mtime_ns, model.identity])
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def _read_cache(cache: Path) -> TextSet:
    with np.load(cache, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return TextSet(meta["file"], meta["texts"], meta["items"], meta["kinds"], data["vectors"])


def _current(cache: Path, meta: dict[str, Any], model: Any) -> bool:
    """Whether a kept set is this model's embedding of its file as the file is now: a file
    still there must have the key the cache is named by (an edited file left an older one); a
    file gone since counts when the set says it was embedded with this model."""
    source = Path(str(meta.get("file", "")))
    try:
        if source.is_file():
            return _key(source, model) == cache.stem
    except OSError:
        return False
    return meta.get("model") == model.identity


def _held(cache: Path, model: Any) -> TextSet | None:
    """The kept set in ``cache`` if it is current for ``model`` (else None)."""
    try:
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            vectors = data["vectors"]
    except (OSError, ValueError, KeyError):
        return None  # a cache being written or damaged: not offered
    if vectors.ndim != 2 or vectors.shape[1] != model.dim or not _current(cache, meta, model):
        return None
    return TextSet(str(meta["file"]), meta["texts"], meta["items"], meta["kinds"], vectors)


def held_text_sets(folder: Path, model: Any) -> list[dict[str, Any]]:
    """The text sets kept in the library ``folder`` for ``model`` (``describe --texts`` made
    them), for a client to choose one by ``id`` without naming a path: id (the cache key),
    name (the file name, no folders), texts (how many) and kinds, by name."""
    out = []
    for cache in sorted((folder / FOLDER).glob("*.npz")):
        held = _held(cache, model) if KEY.fullmatch(cache.stem) else None
        if held is not None:
            out.append({"id": cache.stem, "name": Path(held.file).name, "texts": len(held.texts),
                        "kinds": sorted(set(held.kinds))})  # fmt: skip
    return sorted(out, key=lambda s: (s["name"], s["id"]))


def held_text_set(folder: Path, key: str, model: Any) -> TextSet:
    """The kept text set ``key`` (an id from :func:`held_text_sets`); a key that is not one
    of them raises :class:`MelodexError` (only a 20-hex-digit name is looked up, in the folder)."""
    held = None
    if KEY.fullmatch(key) and (folder / FOLDER / f"{key}.npz").is_file():
        held = _held(folder / FOLDER / f"{key}.npz", model)
    if held is None:
        raise MelodexError(f"text set {key[:40]!r}: not one this library holds for this model")
    return held
