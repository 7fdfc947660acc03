"""A small tagged library for the search, filter, playlist and duplicate tests (toy model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from melodex.library.library import Library
from tests.music_fixtures import tone_piece, write_audio

#: (folder, file, title, artist, album, genre, date, seconds, kind)
TRACKS = (
    ("choral", "kyrie", "Kyrie", "Giovanni Pierluigi da Palestrina", "Missa Papae Marcelli",
     "Renaissance", "1567", 6.0, "organ"),
    ("choral", "gloria_pal", "Gloria", "Giovanni Pierluigi da Palestrina", "Missa Papae Marcelli",
     "Renaissance", "1567", 4.0, "organ"),
    ("choral", "sicut_cervus", "Sicut cervus", "Giovanni Pierluigi da Palestrina",
     "Motets", "Renaissance", "1584", 5.0, "plucked"),
    ("haydn_quartets", "emperor", "Emperor quartet", "Joseph Haydn", "String Quartets Op. 76",
     "Classical", "1797", 8.0, "plucked"),
    ("haydn_quartets", "sunrise", "Sunrise quartet", "Joseph Haydn", "String Quartets Op. 76",
     "Classical", "1797", 3.0, "clicks"),
    ("misc", "gloria", "Gloria", "Anonymous", "Chants", "Chant", "1200", 5.0, "organ"),
    ("misc", "alleluia", "Alleluia", "Anonymous", "Chants", "Chant", "1200", 7.0, "clicks"),
    ("misc", "reel", "Drowsy Maggie", "Trad.", "Session", "Folk", "1995", 6.0, "clicks"),
)  # fmt: skip


def make_tagged_music(folder: Path) -> dict[str, Path]:
    """Write :data:`TRACKS` as FLAC files with tags; returns file stem -> path."""
    paths = {}
    for i, (sub, stem, title, artist, album, genre, date, seconds, kind) in enumerate(TRACKS):
        tags = {"title": title, "artist": artist, "album": album, "genre": genre, "date": date}
        path = folder / sub / f"{stem}.flac"
        paths[stem] = write_audio(path, tone_piece(100 + i, seconds, kind=kind), tags=tags)
    return paths


def tagged_library(tmp_path_factory: pytest.TempPathFactory, toy_model) -> tuple[Library, dict]:
    """:data:`TRACKS` indexed with the toy model: (library, file stem -> path)."""
    root = tmp_path_factory.mktemp("tagged")
    paths = make_tagged_music(root / "music")
    lib = Library(root / "db", model=toy_model)
    lib.index(root / "music")
    return lib, paths
