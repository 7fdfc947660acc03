"""Metadata text and artist similarity (TTMR++): sentences that let a model answer "songs by X"
and "music like X".

Two sources of text, both added to items as texts of kind ``"metadata"``:

- :func:`metadata_sentences`: the track's own title, artist and album ("a song by X from the
  album Y", '"T" by X'). Placeholder artists (Traditional, Anonymous, Unknown, Various) are not
  named as artists ("a traditional tune from the album Y").
- :func:`similarity_sentences`: the artist's neighbours in an artist-similarity graph ("music
  like B", "sounds like B and C"). The graph is a ``networkx.Graph`` whose nodes are artist names
  and whose edges carry a ``weight`` (higher = more similar). Build it from

  * the data itself, :func:`artist_graph_from_tags`: each artist's tag profile is the set of tags
    on their tracks; two artists' similarity is the Jaccard index of their profiles, and each
    artist keeps an edge to its ``k`` most similar others (ties by name);
  * a list you trust, :func:`artist_graph_from_csv`: rows ``artist,similar_artist[,weight]``
    (weight 1.0 when absent; an optional header row is skipped).

Artist names are matched case-insensitively; a graph node keeps the first spelling seen.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from melodex.errors import MelodexError

__all__ = [
    "PLACEHOLDER_ARTISTS",
    "artist_graph_from_csv",
    "artist_graph_from_tags",
    "is_placeholder",
    "metadata_sentences",
    "neighbours",
    "similarity_sentences",
]

PLACEHOLDER_ARTISTS = frozenset(
    {"", "traditional", "anonymous", "anon", "unknown", "various", "various artists", "n/a"}
)


def is_placeholder(artist: str | None) -> bool:
    return (artist or "").strip().lower() in PLACEHOLDER_ARTISTS


def _field(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name) or (item.get("extra") or {}).get(name) or ""
    return " ".join(str(value).split())


def metadata_sentences(item: Mapping[str, Any], *, seed: int = 0, n: int = 2) -> list[str]:
    """Up to ``n`` distinct sentences naming the item's title, artist and album.

    Deterministic given the item's id and ``seed``. An item with none of the three gives ``[]``.
    """
    title, artist, album = (_field(item, k) for k in ("title", "artist", "album"))
    rng = random.Random(f"metadata:{seed}:{item.get('id')}")
    noun = rng.choice(["song", "track", "piece"])
    options: list[str] = []
    named = artist and not is_placeholder(artist)
    if named:
        if album:
            options.append(f"a {noun} by {artist} from the album {album}")
        options.append(f"a {noun} by {artist}")
        if title:
            options.append(f'"{title}" by {artist}')
    elif artist:  # a placeholder: say what it means
        kind = "traditional" if artist.lower() == "traditional" else "anonymous"
        options.append(f"a {kind} {noun}" + (f" from the album {album}" if album else ""))
    if title and album:
        options.append(f'"{title}", from the album {album}')
    elif title and not named:
        options.append(f'the {noun} "{title}"')
    if album and not named:
        options.append(f"a {noun} from the album {album}")
    options = list(dict.fromkeys(options))
    if not options:
        return []
    first, rest = options[:1], options[1:]
    rng.shuffle(rest)
    return (first + rest)[:n]


# ---------------------------------------------------------------------------- the graph


def _canonical(names: dict[str, str], name: str) -> str:
    key = " ".join(name.split()).lower()
    return names.setdefault(key, " ".join(name.split()))


def artist_graph_from_tags(
    items: Iterable[Mapping[str, Any]],
    *,
    k: int = 5,
    min_similarity: float = 0.0,
    ignore_tags: Iterable[str] = (),
) -> nx.Graph:
    """Artist graph from co-occurring tags: Jaccard on tag profiles, top-``k`` neighbours each.

    Placeholder artists are left out. An edge exists when one of its ends ranks the other among
    its ``k`` nearest and their similarity exceeds ``min_similarity``; ``weight`` is the Jaccard
    index. Nodes carry ``tracks`` (count) and ``tags`` (sorted profile).
    """
    if k < 1:
        raise MelodexError(f"k must be >= 1, got {k}")
    ignore = {t.lower() for t in ignore_tags}
    names: dict[str, str] = {}
    profiles: dict[str, set[str]] = {}
    tracks: dict[str, int] = {}
    for item in items:
        artist = _field(item, "artist")
        if is_placeholder(artist):
            continue
        name = _canonical(names, artist)
        tags = {t.lower() for t in item.get("tags", []) if t and t.lower() not in ignore}
        profiles.setdefault(name, set()).update(tags)
        tracks[name] = tracks.get(name, 0) + 1
    graph = nx.Graph()
    for name in sorted(profiles):
        graph.add_node(name, tracks=tracks[name], tags=sorted(profiles[name]))
    artists = sorted(profiles)
    for a in artists:
        scored = []
        for b in artists:
            if a == b:
                continue
            union = profiles[a] | profiles[b]
            sim = len(profiles[a] & profiles[b]) / len(union) if union else 0.0
            if sim > min_similarity:
                scored.append((-sim, b))
        for neg, b in sorted(scored)[:k]:
            graph.add_edge(a, b, weight=round(-neg, 6))
    return graph


def artist_graph_from_csv(path: str | Path) -> nx.Graph:
    """Artist graph from ``artist,similar_artist[,weight]`` rows (UTF-8 CSV).

    A first row whose weight column is not a number and whose first cell is ``artist`` is a
    header. Errors name the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MelodexError(f"{path}: cannot read similar-artist list: {exc.strerror}") from exc
    graph = nx.Graph()
    names: dict[str, str] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() in ("artist", "artist_name", "source"):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise MelodexError(f"{path}:{number}: expected artist,similar_artist[,weight]")
        weight = 1.0
        if len(row) > 2 and row[2].strip():
            try:
                weight = float(row[2])
            except ValueError:
                raise MelodexError(f"{path}:{number}: weight {row[2]!r} is not a number") from None
        a, b = _canonical(names, row[0]), _canonical(names, row[1])
        if a == b:
            continue
        old = graph.get_edge_data(a, b, {}).get("weight", float("-inf"))
        graph.add_edge(a, b, weight=max(weight, old))
    return graph


def neighbours(graph: nx.Graph, artist: str, *, k: int = 3) -> list[str]:
    """The ``k`` most similar artists (highest weight first, ties by name); [] when unknown."""
    lookup = {str(n).lower(): n for n in graph.nodes}
    node = lookup.get(" ".join(artist.split()).lower())
    if node is None:
        return []
    edges = [(-float(d.get("weight", 1.0)), str(m)) for m, d in graph[node].items()]
    return [m for _, m in sorted(edges)[:k]]


_LIKE = ("music like {}", "sounds like {}", "for fans of {}", "in the vein of {}",
         "similar to {}")  # fmt: skip


def similarity_sentences(
    artist: str, graph: nx.Graph, *, k: int = 3, n: int = 2, seed: int = 0
) -> list[str]:
    """Up to ``n`` sentences naming the artist's nearest neighbours: "music like B",
    "sounds like B and C". Deterministic given ``artist`` and ``seed``."""
    near = neighbours(graph, artist, k=k)
    if not near:
        return []
    rng = random.Random(f"similar:{seed}:{artist.lower()}")
    out = [rng.choice(_LIKE[:2]).format(near[0])]
    if len(near) > 1:
        from melodex.enrich.captions import join_list

        out.append(rng.choice(_LIKE).format(join_list(near[:3])))
    out += [rng.choice(_LIKE).format(m) for m in near[1:]]
    return list(dict.fromkeys(out))[:n]


def add_texts(item: Mapping[str, Any], kind: str, texts: Sequence[str]) -> dict[str, Any]:
    """A copy of ``item`` with ``texts`` appended as ``kind`` (exact duplicates skipped)."""
    out = dict(item)
    current = list(item.get("texts", []))
    seen = {t["text"].strip().lower() for t in current}
    for text in texts:
        if text and text.strip() and text.strip().lower() not in seen:
            current.append({"kind": kind, "text": text.strip()})
            seen.add(text.strip().lower())
    out["texts"] = current
    return out
