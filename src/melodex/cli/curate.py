"""Commands that arrange a library's tracks: duplicates, playlist, path, highlight."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from melodex.cli.app import app
from melodex.cli.common import (
    DbOption,
    JsonOption,
    ModelOption,
    err,
    errors,
    library,
    out,
    print_json,
    shown,
)
from melodex.cli.filters import (
    AlbumOption,
    ArtistOption,
    BpmOption,
    DurationOption,
    ExcludeOption,
    FolderOption,
    GenreOption,
    KeyOption,
    ModeOption,
    YearOption,
    metadata,
)


@app.command()
def duplicates(
    db: DbOption = None,
    model: ModelOption = None,
    track_min: Annotated[
        float, typer.Option(min=-1.0, max=1.0, help="Least cosine of the track vectors.")
    ] = 0.95,
    window_min: Annotated[
        float,
        typer.Option(
            min=-1.0, max=1.0, help="Least correlation of the windows' changes over time."
        ),
    ] = 0.8,
    audio: Annotated[
        bool,
        typer.Option(
            "--audio/--no-audio",
            help="Decide the pairs the windows leave undecided (trims off the window grid) "
            "from the files' audio, decoding those tracks.",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Tracks that hold one recording (other formats, bitrates, trims, gain), with evidence."""
    with errors():
        groups = library(db, model).duplicates(
            track_min=track_min, window_min=window_min, audio=audio
        )
    if as_json:
        print_json([g.to_json() for g in groups])
        return
    if not groups:
        out.print("no duplicates found")
    for n, group in enumerate(groups, start=1):
        out.print(f"[bold]group {n}[/bold] ({len(group.tracks)} tracks)")
        for t in group.tracks:
            out.print(f"  {t['duration']:7.1f}s  {shown(t['path'])}", highlight=False)
        for e in group.evidence:
            out.print(
                f"  [dim]{e.a} ~ {e.b}: track cosine {e.track_cosine:.4f}, windows "
                f"{e.window_match:.4f}, length ratio {e.duration_ratio:.3f}"
                + ("" if e.audio_match is None else f", audio {e.audio_match:.4f}")
                + "[/dim]",
                highlight=False,
            )


def _is_track(text: str) -> bool:
    return Path(text).expanduser().is_file() or (text.isascii() and text.isdigit())


def _print_entries(entries: list, as_json: bool) -> None:
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    total = 0.0
    for n, e in enumerate(entries, start=1):
        total += e.duration
        name = " - ".join(x for x in (e.artist, e.title) if x) or Path(e.path).name
        out.print(f"{n:3d}. {e.duration / 60:5.1f} min  {shown(name)}", highlight=False)
    out.print(f"{len(entries)} tracks, {total / 60:.1f} min")


def _write(entries: list, m3u: Path | None, xspf: Path | None) -> None:
    from melodex.library.playlists import write_m3u, write_xspf

    if m3u is not None:
        write_m3u(entries, m3u)
        err.print(f"wrote {shown(m3u)}", highlight=False)
    if xspf is not None:
        write_xspf(entries, xspf)
        err.print(f"wrote {shown(xspf)}", highlight=False)


M3uOption = Annotated[Path | None, typer.Option("--m3u", help="Write extended M3U here.")]
XspfOption = Annotated[Path | None, typer.Option("--xspf", help="Write XSPF here.")]
SpacingOption = Annotated[
    int, typer.Option(min=0, help="At least this many tracks between two of one artist/album.")
]


@app.command()
def playlist(
    seeds: Annotated[
        list[str], typer.Argument(help="A text, or tracks (paths or ids) to start from.")
    ],
    length: Annotated[str, typer.Option(help="Total length: 45m, 1h30m, 3600.")] = "45m",
    m3u: M3uOption = None,
    xspf: XspfOption = None,
    spacing: SpacingOption = 0,
    bpm: BpmOption = None,
    key: KeyOption = None,
    artist: ArtistOption = None,
    album: AlbumOption = None,
    genre: GenreOption = None,
    year: YearOption = None,
    folder: FolderOption = None,
    duration: DurationOption = None,
    exclude: ExcludeOption = None,
    mode: ModeOption = "hybrid",
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """A playlist of about --length: tracks matching a text, or like seed tracks.

    The filters and --exclude of `search` apply (--mode to a text only)."""
    from melodex.library.filters import make_filter, parse_duration
    from melodex.library.playlists import make_playlist

    with errors():
        lib = library(db, model)
        where = make_filter(**metadata(artist, album, genre, year, folder, duration))
        options = {"length": parse_duration(length), "spacing": spacing, "where": where,
                   "bpm": bpm, "key": key, "exclude": exclude or []}  # fmt: skip
        if all(_is_track(s) for s in seeds):
            found = [lib.resolve_track(s) for s in seeds]
            entries = make_playlist(lib, seeds=found, **options)
        else:
            entries = make_playlist(lib, text=" ".join(seeds), mode=mode, **options)
        _write(entries, m3u, xspf)
    _print_entries(entries, as_json)


@app.command()
def path(
    start: Annotated[str, typer.Argument(help="The first track (an indexed path or an id).")],
    end: Annotated[str, typer.Argument(help="The last track.")],
    steps: Annotated[int, typer.Option(min=0, help="Tracks between the two.")] = 8,
    spacing: SpacingOption = 0,
    m3u: M3uOption = None,
    xspf: XspfOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """A smooth path of tracks from one track to another, no track twice."""
    from melodex.library.playlists import make_path

    with errors():
        lib = library(db, model)
        entries = make_path(
            lib, lib.resolve_track(start), lib.resolve_track(end), steps=steps, spacing=spacing
        )
        _write(entries, m3u, xspf)
    _print_entries(entries, as_json)


@app.command()
def highlight(
    track: Annotated[str, typer.Argument(help="An indexed path, any audio file, or a track id.")],
    query: Annotated[
        str | None, typer.Argument(help="A text; none: the most typical moment.")
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where to start a preview: the indexed window that best matches a text (or the track)."""
    with errors():
        lib = library(db, model)
        found = lib.highlight(lib.resolve_track(track), query)
    if as_json:
        print_json(found.to_json())
        return
    out.print(f"start at {found.start:.1f} s" if found.start is not None else "no windows")
    for m in found.moments:
        out.print(f"  {m.start:7.1f}-{m.end:<7.1f} {m.score:6.3f}", highlight=False)
