"""Texts a user names (reviews, captions, tags, mined sentences), embedded once beside the
library, for ``describe`` to rank against a track: "upload music, get the closest reviews".

A text set is read from a melodex manifest (JSONL or Parquet: each item's ``texts`` with their
kinds) or a plain ``.txt`` file (one text a line). Its embeddings are kept in
``<library>/text-sets/<key>.npz``, the key naming the file (resolved path, size, modification
time) and the model, so a changed file or another model embeds again and nothing else does.
Each text keeps its source: the manifest item's id (or the line number) and the kind.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError

FOLDER = "text-sets"


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
    st = path.stat()
    blob = json.dumps([str(path), st.st_size, st.st_mtime_ns, model.identity])
    key = hashlib.sha1(blob.encode()).hexdigest()[:20]
    cache = None if folder is None else folder / FOLDER / f"{key}.npz"
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return TextSet(str(path), meta["texts"], meta["items"], meta["kinds"], data["vectors"])
    texts, items, kinds = read_texts(path)
    if not texts:
        raise MelodexError(f"{path}: no texts in it")
    vectors = np.asarray(model.encode_text(texts), np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        meta = json.dumps({"file": str(path), "texts": texts, "items": items, "kinds": kinds})
        np.savez(tmp, vectors=vectors, meta=np.asarray(meta))
        os.replace(tmp, cache)
    return TextSet(str(path), texts, items, kinds, vectors)
