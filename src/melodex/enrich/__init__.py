"""Enrich a manifest with text (TTMR++): pseudo-captions from tags, metadata and artist-similarity
sentences. See :mod:`melodex.enrich.captions` and :mod:`melodex.enrich.metadata`.

>>> items = enrich_items(items, captions=True, metadata=True)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from melodex.enrich.captions import LLMBackend, template_caption
from melodex.enrich.metadata import (
    add_texts,
    artist_graph_from_tags,
    metadata_sentences,
    similarity_sentences,
)
from melodex.progress import ProgressFn

__all__ = ["caption_metadata", "enrich_items", "pseudo_captions"]


def caption_metadata(item: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata a caption may mention: title, artist, album, bpm, key (from ``extra``)."""
    extra = item.get("extra") or {}
    meta = {k: item.get(k) for k in ("title", "artist", "album")}
    for k in ("bpm", "key"):
        if extra.get(k) not in (None, ""):
            meta[k] = extra[k]
    return meta


def pseudo_captions(
    item: Mapping[str, Any],
    *,
    n: int = 1,
    seed: int = 0,
    with_metadata: bool = False,
    llm: LLMBackend | None = None,
) -> list[str]:
    """``n`` pseudo-captions for one item's tags (the template grammar, or ``llm`` when given).

    ``with_metadata`` lets the caption name title/artist/album/bpm/key; off by default so a
    pseudo-caption describes the sound only (metadata gets its own texts).
    """
    tags = list(item.get("tags", []))
    meta = caption_metadata(item) if with_metadata else {}
    if not tags and not any(meta.values()):
        return []
    if llm is not None:
        return [llm.caption(tags, metadata=meta) for _ in range(n)]
    out: list[str] = []
    for i in range(n * 3):  # a few extra draws in case two seeds give the same sentence
        text = template_caption(
            tags, metadata=meta, seed=seed * 1000 + i, variant=str(item.get("id", ""))
        )
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    return out


def enrich_items(
    items: Sequence[Mapping[str, Any]],
    *,
    captions: bool = True,
    metadata: bool = True,
    n_captions: int = 1,
    graph: nx.Graph | None = None,
    similar_k: int = 3,
    splits: Sequence[str] | None = None,
    seed: int = 0,
    llm: LLMBackend | None = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """New items with ``pseudo-caption`` and ``metadata`` texts added.

    ``graph`` is an artist-similarity graph; with ``metadata=True`` and no graph, one is built from
    the items' own tags (:func:`~melodex.enrich.metadata.artist_graph_from_tags`, train split
    only when there is one, so no test information leaks into training text). ``splits`` limits
    which items are enriched (default: all).
    """
    if metadata and graph is None:
        train = [it for it in items if it.get("split") == "train"]
        graph = artist_graph_from_tags(train or items, k=similar_k)
    out: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=1):
        new = dict(item)
        if splits is None or item.get("split") in splits:
            if captions:
                new = add_texts(
                    new, "pseudo-caption", pseudo_captions(item, n=n_captions, seed=seed, llm=llm)
                )
            if metadata:
                texts = metadata_sentences(item, seed=seed)
                artist = str(item.get("artist") or "")
                if graph is not None and artist:
                    texts += similarity_sentences(artist, graph, k=similar_k, seed=seed)
                new = add_texts(new, "metadata", texts)
        out.append(new)
        if progress is not None:
            progress(number, len(items), str(item.get("id", "")))
    return out
