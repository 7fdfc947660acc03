"""Commands on a music library: index, search, similar, tag, describe, info, models, demo, serve."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from melodex.cli.app import app
from melodex.cli.common import (
    DbOption,
    JsonOption,
    KOption,
    ModelOption,
    err,
    errors,
    library,
    out,
    print_event,
    print_json,
    progress_bar,
    shown,
)
from melodex.cli.filters import (
    AlbumOption,
    ArtistOption,
    BpmOption,
    CollapseOption,
    DiversityOption,
    DurationOption,
    ExcludeOption,
    FolderOption,
    GenreOption,
    KeyOption,
    ModeOption,
    PerAlbumOption,
    PerArtistOption,
    YearOption,
    metadata,
    variety,
)
from melodex.cli.output import print_hits


class Coverage(StrEnum):
    """``melodex index --coverage``: the indexer's COVERAGES."""

    sampled = "sampled"
    full = "full"


@app.command()
def index(
    folder: Annotated[Path, typer.Argument(help="Folder of music, scanned recursively.")],
    db: DbOption = None,
    model: ModelOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Decoding threads running ahead of the model (default 1); with --ray, worker "
            "processes of the local Ray cluster (default: all cores).",
        ),
    ] = None,
    descriptors: Annotated[
        bool, typer.Option(help="Also estimate tempo, key and loudness (for --bpm/--key filters).")
    ] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Embed on Ray: `--ray` alone starts a local cluster; `--ray ADDRESS` joins one "
            "(auto, host:port, ray://host:10001). Needs melodex[ray].",
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Files per Ray task (with --ray).")] = 4,
    coverage: Annotated[
        Coverage,
        typer.Option(
            help="Windows embedded per track: 'sampled' (the model's 8, spread evenly) or "
            "'full' (every window; re-embeds tracks stored sampled; ~4x the time).",
        ),
    ] = Coverage.sampled,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Enter linked folders and index linked files outside FOLDER (each folder "
            "once; never a folder above FOLDER, nor /proc, /sys, /dev).",
        ),
    ] = False,
    commit_every: Annotated[
        int, typer.Option(min=1, help="Tracks per atomic commit.", hidden=True)
    ] = 16,
    events: Annotated[
        bool,
        typer.Option(
            "--events", help="Print the run's phases as JSON lines on stderr.", hidden=True
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Index (or re-index incrementally) a folder of music."""
    with errors():
        lib = library(db, model)
        options: dict[str, object] = {
            "commit_every": commit_every,
            "follow_symlinks": follow_symlinks,
            "coverage": coverage.value,
        }
        if ray is not None:
            options |= {"workers": workers, "batch_size": batch}
        else:
            options |= {"decode_workers": workers or 1}
        committed = {"rows": 0}  # what the store holds from this run, for the bar and SIGINT

        def on_event(kind: str, facts: dict[str, object]) -> None:
            if kind == "committed":
                committed["rows"] = int(facts["total"])  # type: ignore[call-overload]
            if events:
                print_event(kind, facts)

        options["events"] = on_event
        try:
            with progress_bar("indexing", unit="files", committed=committed) as update:
                report = lib.index(
                    folder, progress=update, descriptors=descriptors, ray=ray, **options
                )
        except KeyboardInterrupt:
            err.print(
                f"interrupted: {committed['rows']} track(s) written by this run are kept in "
                f"{shown(lib.path)}; run the same command again to resume",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
    if as_json:
        print_json(
            {
                "db": str(lib.path),
                "added": report.added,
                "updated": report.updated,
                "moved": report.moved,
                "skipped": report.skipped,
                "removed": report.removed,
                "failed": [{"path": p, "reason": r} for p, r in report.failed],
                "audio_seconds": round(report.audio_seconds, 2),
                "wall_seconds": round(report.wall_seconds, 2),
            }
        )
        return
    out.print(
        f"[green]{len(report.added)} indexed[/green], {len(report.updated)} updated, "
        f"{len(report.moved)} moved, {report.skipped} unchanged, {len(report.removed)} removed, "
        f"[red]{len(report.failed)} failed[/red] — {len(lib)} tracks in {shown(lib.path)}"
    )
    if report.audio_seconds:
        out.print(
            f"{report.audio_seconds / 60:.1f} min of audio in {report.wall_seconds:.1f} s "
            f"({report.realtime_factor:.0f}x real time)"
        )
    for path, reason in report.failed:
        out.print(
            f"  [red]failed[/red] {shown(path)}: {shown(reason)}", highlight=False, soft_wrap=True
        )


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Any description: tags, a sentence, a mood.")],
    k: KOption = 10,
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
    per_artist: PerArtistOption = None,
    per_album: PerAlbumOption = None,
    diversity: DiversityOption = 0.0,
    collapse: CollapseOption = False,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the tracks that best match a text: a description, a name, or both."""
    with errors():
        found = metadata(artist, album, genre, year, folder, duration)
        arranged = variety(per_artist, per_album, diversity, collapse)
        hits = None
        plain = not (bpm or key or found or exclude or arranged) and mode == "hybrid"
        if plain:  # the cold path: no torch, no LanceDB (the same results)
            from melodex.library.cold_search import fast_search

            hits = fast_search(db, text, k=k, model=model)
        if hits is None:
            lib = library(db, model)
            hits = lib.search(
                text, k=k, bpm=bpm, key=key, mode=mode, exclude=exclude or [],
                variety=arranged, **found,
            )  # fmt: skip
            if plain:
                from melodex.library.cold_search import refresh_snapshot

                refresh_snapshot(lib)
    print_hits(hits, as_json)


@app.command()
def similar(
    tracks: Annotated[
        list[str], typer.Argument(help="Indexed paths, any audio files, or track ids (averaged).")
    ],
    k: KOption = 10,
    plus: Annotated[
        list[str] | None, typer.Option(help="Pull towards this text (repeatable).")
    ] = None,
    minus: Annotated[
        list[str] | None, typer.Option(help="Push tracks like this text down (repeatable).")
    ] = None,
    per_artist: PerArtistOption = None,
    per_album: PerAlbumOption = None,
    diversity: DiversityOption = 0.0,
    collapse: CollapseOption = False,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the tracks that sound most like a track, or like several."""
    with errors():
        lib = library(db, model)
        hits = lib.similar(
            [lib.resolve_track(t) for t in tracks], k=k, plus=plus or [], minus=minus or [],
            variety=variety(per_artist, per_album, diversity, collapse),
        )  # fmt: skip
    print_hits(hits, as_json)


@app.command()
def tag(
    file: Annotated[Path, typer.Argument(help="An audio file.")],
    k: KOption = 10,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Zero-shot tags of a file with the model's confidences."""
    with errors():
        tags = library(db, model).tag(file, k=k)
    if as_json:
        print_json({"path": str(file), "tags": [{"text": t, "score": s} for t, s in tags]})
        return
    for text, score in tags:
        out.print(f"{score:6.3f}  {shown(text)}", highlight=False)


@app.command()
def describe(
    file: Annotated[Path, typer.Argument(help="An audio file.")],
    k: KOption = 10,
    texts: Annotated[
        Path | None,
        typer.Option(help="Also rank the texts of this manifest or .txt file (reviews, captions)."),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Only texts of this kind (caption, review, ...).")
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """What a file sounds like: tags, nearest texts, nearest tracks in the library."""
    with errors():
        desc = library(db, model).describe(
            file, k=k, texts=texts, kinds=set(kind) if kind else None
        )
    if as_json:
        print_json(desc.to_json())
        return
    out.print("[bold]tags[/bold]: " + ", ".join(f"{shown(t)} ({s:.2f})" for t, s in desc.tags))
    out.print(
        "[bold]sounds like[/bold]: " + ", ".join(f"{shown(t)} ({s:.2f})" for t, s in desc.texts)
    )
    if desc.matches is not None:
        out.print("[bold]nearest texts of the set[/bold]:")
        for m in desc.matches:
            out.print(
                f"  {m['score']:6.3f}  {shown(m['text'])}  [dim]({shown(m['item'])}, "
                f"{shown(m['kind'])})[/dim]",
                highlight=False,
                soft_wrap=True,
            )
    if desc.similar:
        out.print("[bold]nearest tracks[/bold]:")
        print_hits(desc.similar, False)


@app.command()
def info(db: DbOption = None, model: ModelOption = None, as_json: JsonOption = False) -> None:
    """What a library holds and which model made it."""
    with errors():
        lib = library(db, model)
        store = lib.store
        meta = store.meta
        facts = {
            "db": str(lib.path),
            "tracks": len(store),
            "model": meta.get("model"),
            "model_source": meta.get("model_source") or meta.get("model_name"),
            "licence": meta.get("licence"),
            "dim": meta.get("dim"),
        }
    if as_json:
        print_json(facts)
        return
    for name, value in facts.items():
        out.print(f"{name}: {shown(value)}", highlight=False)


@app.command()
def models(as_json: JsonOption = False) -> None:
    """What models melodex can load: architectures of model folders, families, built-ins."""
    from melodex.models import listing

    found = listing()
    if as_json:
        print_json(found)
        return
    out.print(f"built-in: {', '.join(found['builtin'])} (default {found['default']})")
    out.print("[bold]model folders[/bold] (--model FOLDER), by the architecture in config.json:")
    for a in found["architectures"]:
        out.print(f"  {a['name']:<20} {a['summary']}", highlight=False)
    if found["families"]:
        out.print("[bold]pretrained families[/bold] (--model FAMILY:ARGUMENT):")
        for f in found["families"]:
            shape = f"{f['dim'] or '?'}-d, {f['sample_rate'] or '?'} Hz"
            out.print(  # no [..]: rich would read it as markup and drop it
                f"  {f['prefix']}:{f['argument']}  {f['summary']} ({shape}; "
                f"licence: {f['licence']})",
                highlight=False,
                markup=False,
            )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--dir", help="Where the demo music goes.")] = Path(
        "demo-data/music"
    ),
    db: Annotated[Path, typer.Option("--db")] = Path("demo-data/library"),
    n_tracks: Annotated[int, typer.Option("--tracks", min=1)] = 24,
    seconds: Annotated[float, typer.Option(min=2.0)] = 30.0,
    k: KOption = 3,
) -> None:
    """The main job on the built-in default: render a small real music set, index it, search it.

    Each hit is printed with what the track really is (from the demo manifest), so you can
    judge the answers yourself.
    """
    from melodex.data.demo import DEMO_QUERIES, build_demo, demo_truth

    with errors():
        with progress_bar("rendering demo music", unit="tracks") as update:
            manifest = build_demo(
                out_dir,
                n_tracks=n_tracks,
                seconds=seconds,
                formats=("flac", "ogg", "mp3", "m4a"),
                progress=update,
            )
        truth = demo_truth(manifest)
        lib = library(db, None)
        with progress_bar("indexing", unit="files") as update:
            report = lib.index(out_dir, progress=update)
        out.print(
            f"indexed {len(report.added) + len(report.updated)} new, {report.skipped} unchanged, "
            f"{len(report.failed)} failed; {len(lib)} tracks in {shown(lib.path)} "
            f"({lib.index_kind} search)"
        )
        for query in DEMO_QUERIES:
            out.print(f"\n[bold]search:[/bold] {query!r}")
            # the model's own answers (vector mode), to be judged against what each track is;
            # names and words of the tags go through hybrid search (docs/search.md)
            for hit in lib.search(query, k=k, mode="vector"):
                out.print(
                    f"  {hit.rank}. {hit.score:.3f}  {shown(hit.title)} ({shown(hit.artist)})"
                    f"  [dim]— really: {shown(truth.get(hit.path, ''))}[/dim]",
                    highlight=False,
                    soft_wrap=True,
                )


@app.command()
def serve(
    db: DbOption = None,
    model: ModelOption = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MELODEX_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' (or ?token=) on every /api request. "
            "Prefer $MELODEX_TOKEN or --token-file: a --token is visible in `ps`.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Read the token from this file's first line."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Also answer requests for this Host name (repeatable; loopback names, IP "
            "addresses and the --host name always pass; '*' turns the check off).",
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host without --token.")
    ] = False,
    max_upload_mb: Annotated[int, typer.Option(min=1, help="Largest clip to describe.")] = 50,
    decode_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to decode a clip.")
    ] = 30.0,
) -> None:
    """Serve the library over HTTP: a JSON API (spec at /openapi.json) and a web page at /."""
    from melodex.serve.security import check_token_strength, is_loopback, read_token_file

    loopback = is_loopback(host)
    if token_file is not None:
        with errors():
            token = read_token_file(token_file)
    weak = check_token_strength(token, public=not loopback)
    if weak is not None:
        err.print(f"[red]error:[/red] {shown(weak)}", highlight=False)
        raise typer.Exit(2)
    if not loopback and not token:
        if not insecure:
            err.print(
                f"[red]error:[/red] --host {shown(host)} exposes the library beyond this "
                "machine; set --token (or MELODEX_TOKEN), or pass --insecure to serve without one"
            )
            raise typer.Exit(2)
        err.print(
            f"[yellow]warning:[/yellow] serving on {shown(host)} with no token: anyone who can "
            "reach this port can search and download your music"
        )
    import uvicorn

    from melodex.serve import ServeConfig, create_app

    with errors():
        library_here(db)
        config = ServeConfig(
            db=db,
            model=model,
            token=token,
            bind_host=host,
            allow_hosts=tuple(allow_host or ()),
            max_upload_bytes=max_upload_mb * 1024 * 1024,
            decode_timeout=decode_timeout,
        )
        web = create_app(config)
    where = host if ":" not in host else f"[{host}]"
    err.print(
        f"melodex: serving {shown(web.state.service.path)} on http://{shown(where)}:{port}/",
        highlight=False,
    )
    if not loopback and not allow_host:
        err.print(
            "melodex: browsers must address this server by IP address (or by a name given "
            "with --allow-host NAME); other names are refused (DNS rebinding)",
            highlight=False,
        )
    uvicorn.run(web, host=host, port=port, log_level="warning")


def library_here(db: str | None) -> None:
    """Refuse to serve a library that does not exist (a typo in --db would serve nothing)."""
    from melodex.errors import StoreError
    from melodex.library.backends import as_location, is_store_url
    from melodex.library.library import default_library_path

    location = as_location(db) if db is not None else default_library_path()
    if not is_store_url(location) and not Path(location).exists():
        raise StoreError(
            f"{location}: no library here (check --db, or run `melodex index DIR --db "
            f"{location}` first)"
        )
