"""Options shared by the commands that rank tracks: metadata filters, exclusion, search mode."""

from __future__ import annotations

from typing import Annotated, Any

import typer

ArtistOption = Annotated[str | None, typer.Option(help="Only tracks whose artist contains this.")]
AlbumOption = Annotated[str | None, typer.Option(help="Only tracks whose album contains this.")]
GenreOption = Annotated[str | None, typer.Option(help="Only tracks whose genre contains this.")]
YearOption = Annotated[
    str | None, typer.Option(help="Year or range from the file's date tag: 1995, 1990-1999, 1990-.")
]
FolderOption = Annotated[
    str | None,
    typer.Option(help="Only tracks below this folder (absolute), or whose folder contains this."),
]
DurationOption = Annotated[
    str | None, typer.Option(help="Length range: 2m-5m, 3:00-, -90s (one value: at least).")
]
BpmOption = Annotated[
    str | None, typer.Option(help="Tempo range, e.g. 60-90 (needs `index --descriptors`).")
]
KeyOption = Annotated[
    str | None, typer.Option(help="Key or mode: minor, D, 'D minor' (needs descriptors).")
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        help="Push down tracks like this text (repeatable); 'no X' / 'not X' in a query too."
    ),
]
ModeOption = Annotated[
    str,
    typer.Option(
        help="hybrid: vectors fused with a full-text search of the tags, file and folder names; "
        "vector or text: one of them."
    ),
]


def metadata(
    artist: str | None,
    album: str | None,
    genre: str | None,
    year: str | None,
    folder: str | None,
    duration: str | None,
) -> dict[str, Any]:
    """The filter keyword arguments of ``Library.search`` that were given."""
    given = {"artist": artist, "album": album, "genre": genre, "year": year, "folder": folder,
             "duration": duration}  # fmt: skip
    return {name: value for name, value in given.items() if value is not None}


PerArtistOption = Annotated[
    int | None, typer.Option(min=1, help="At most this many hits of one artist.")
]
PerAlbumOption = Annotated[int | None, typer.Option(min=1, help="At most this many of one album.")]
DiversityOption = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="MMR re-ranking: 0 off, 1 most varied.")
]
CollapseOption = Annotated[
    bool, typer.Option("--collapse", help="Show one hit per recording (duplicates collapsed).")
]


def variety(per_artist: int | None, per_album: int | None, diversity: float, collapse: bool) -> Any:
    """A ``Variety`` when any option is on, else None."""
    from melodex.library.variety import Variety

    chosen = Variety(
        collapse=collapse, per_artist=per_artist, per_album=per_album, diversity=diversity
    )
    return chosen if chosen else None
