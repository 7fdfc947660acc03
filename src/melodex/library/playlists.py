"""Playlists from a text or seed tracks, paths from one track to another, and their files.

Why greedy: a playlist is the best-ranked tracks in order until the wanted length is filled,
which keeps "the first song is the best match" true; a path walks evenly spaced points on the
line between the two tracks' vectors (renormalised) and takes, at each, the nearest track not
used yet, so consecutive tracks change by small steps. Files: extended M3U (``#EXTINF`` with
length and "artist - title") and XSPF, written with ``xml.etree``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError, ParameterError
from melodex.library.filters import TrackFilter
from melodex.library.hybrid import EXCLUDE_WEIGHT

CANDIDATES = 200


@dataclass
class Entry:
    """One track of a playlist or path."""

    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    duration: float
    score: float | None = None
    start: float | None = None  # the best-matching moment, seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _entry(hit: Any) -> Entry:
    return Entry(
        id=hit.id, path=hit.path, title=hit.title, artist=hit.artist, album=hit.album,
        duration=float(hit.duration), score=float(hit.score), start=hit.segment_start,
    )  # fmt: skip


def _spaced(entry: Entry, chosen: list[Entry], spacing: int) -> bool:
    """Whether ``entry`` keeps ``spacing`` tracks between itself and one of the same artist or
    album (unknown artists and albums never clash)."""
    for other in chosen[-spacing:] if spacing > 0 else []:
        if entry.artist and entry.artist == other.artist:
            return False
        if entry.album and entry.album == other.album:
            return False
    return True


def seed_vector(lib: Any, seeds: Sequence[str | int]) -> tuple[np.ndarray, list[int]]:
    """The mean of the seed tracks' vectors (normalised) and the seed ids that are indexed."""
    vectors, ids = [], []
    for seed in seeds:
        vector, own = lib._track_vector(seed)
        vectors.append(vector)
        if own is not None:
            ids.append(own)
    mean = np.mean(vectors, axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32), ids


def make_playlist(
    lib: Any,
    *,
    text: str | None = None,
    seeds: Sequence[str | int] = (),
    length: float,
    spacing: int = 0,
    where: TrackFilter | None = None,
    bpm: str | None = None,
    key: str | None = None,
    exclude: str | Sequence[str] = (),
    mode: str = "hybrid",
    include_seeds: bool = True,
) -> list[Entry]:
    """Tracks matching ``text`` (hybrid search) or like the ``seeds`` (their mean vector), best
    first, until their total length reaches ``length`` seconds. ``spacing``: at least that many
    tracks between two of one artist or album, where the candidates allow.

    The candidates pass the filters of search: ``where`` (metadata), ``bpm`` and ``key``
    (descriptors), and ``exclude`` texts (and "no X" in ``text``) push tracks like them down;
    ``mode`` is search's for a text. Seed tracks the user named open the list unfiltered."""
    if length <= 0:
        raise ParameterError(f"playlist length must be positive, not {length}")
    if (text is None) == (not seeds):
        raise ParameterError("give a text or seed tracks for a playlist, not both")
    k = min(max(len(lib), 1), CANDIDATES)
    excluded = [exclude] if isinstance(exclude, str) else list(exclude)
    chosen: list[Entry] = []
    if text is not None:
        hits = lib.search(text, k=k, where=where, bpm=bpm, key=key, exclude=excluded, mode=mode)
    else:
        vector, own = seed_vector(lib, seeds)
        if include_seeds and own:
            chosen = [_entry(h) for h in lib._hits(_ranked_ids(own), vector)]
        ranked = lib._rank(
            vector, text="", k=k, bpm=bpm, key=key, flt=where or TrackFilter(), mode="vector",
            excluded=[e for e in excluded if e.strip()], exclude_weight=EXCLUDE_WEIGHT,
            drop=tuple(own),
        )  # fmt: skip
        hits = lib._hits(ranked, vector)
    pending = [_entry(h) for h in hits]
    total = sum(e.duration for e in chosen)
    while pending and total < length:
        pick = next((e for e in pending if _spaced(e, chosen, spacing)), pending[0])
        pending.remove(pick)
        chosen.append(pick)
        total += pick.duration
    return chosen


def _ranked_ids(ids: Sequence[int]) -> list[Any]:
    from melodex.library.hybrid import Ranked

    return [Ranked(i, 1.0) for i in ids]


def make_path(
    lib: Any, start: str | int, end: str | int, *, steps: int, spacing: int = 0
) -> list[Entry]:
    """``start``, ``steps`` tracks between, ``end``: each the nearest unused track to a point
    evenly spaced on the line from ``start``'s vector to ``end``'s (renormalised)."""
    if steps < 0:
        raise ParameterError(f"--steps must be 0 or more, not {steps}")
    va, own_a = lib._track_vector(start)
    vb, own_b = lib._track_vector(end)
    if own_a is None or own_b is None:
        raise MelodexError("a path runs between two tracks of the library (index them first)")
    if own_a == own_b:
        raise ParameterError("a path needs two different tracks")
    first, last = (_entry(h) for h in lib._hits(_ranked_ids([own_a, own_b]), va))
    chosen = [first]
    used = {own_a, own_b}
    for i in range(1, steps + 1):
        t = i / (steps + 1)
        point = (1 - t) * va + t * vb
        point = (point / max(float(np.linalg.norm(point)), 1e-12)).astype(np.float32)
        hits = lib.nearest(point, k=min(len(used) + 20, max(len(lib), 1)), exclude=list(used))
        options = [_entry(h) for h in hits]
        if not options:
            break  # the library has no more tracks
        pick = next((e for e in options if _spaced(e, chosen, spacing)), options[0])
        chosen.append(pick)
        used.add(pick.id)
    chosen.append(last)
    return chosen


def write_m3u(entries: Sequence[Entry], file: str | Path) -> Path:
    """Extended M3U (UTF-8): ``#EXTINF:<seconds>,<artist> - <title>`` before each path."""
    lines = ["#EXTM3U"]
    for e in entries:
        name = " - ".join(x for x in (e.artist, e.title) if x) or Path(e.path).stem
        name = " ".join(name.split())  # no line breaks from a tag
        lines += [f"#EXTINF:{round(e.duration)},{name}", e.path]
    file = Path(file)
    file.write_text("\n".join(lines) + "\n", "utf-8")
    return file


def write_xspf(entries: Sequence[Entry], file: str | Path, *, title: str = "melodex") -> Path:
    """XSPF 1 (xspf.org): location as a file URI, title, creator, album, duration in ms."""
    ns = "http://xspf.org/ns/0/"
    ET.register_namespace("", ns)
    root = ET.Element(f"{{{ns}}}playlist", version="1")
    ET.SubElement(root, f"{{{ns}}}title").text = title
    tracks = ET.SubElement(root, f"{{{ns}}}trackList")
    for e in entries:
        track = ET.SubElement(tracks, f"{{{ns}}}track")
        ET.SubElement(track, f"{{{ns}}}location").text = Path(e.path).absolute().as_uri()
        for tag, value in (("title", e.title), ("creator", e.artist), ("album", e.album)):
            if value:
                ET.SubElement(track, f"{{{ns}}}{tag}").text = value
        ET.SubElement(track, f"{{{ns}}}duration").text = str(round(e.duration * 1000))
    file = Path(file)
    ET.ElementTree(root).write(file, encoding="utf-8", xml_declaration=True)
    return file
