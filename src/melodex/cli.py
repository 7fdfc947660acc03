"""The ``melodex`` command line: a thin door onto the library API.

Library code raises; this module prints and sets exit codes. ``--json`` output follows the
contract documented in the README (keys are stable).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from melodex.errors import MelodexError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search music by text, offline.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: the demo corpus.")
app.add_typer(data_app, name="data")
out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Library folder, or chroma://HOST:PORT/COLLECTION for a Chroma server "
        "(default: $MELODEX_DB or the user data dir).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model name or folder (default: the library's, or melodex-base)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys, see README).")]
KOption = Annotated[int, typer.Option("-k", min=1, help="How many results.")]


@contextmanager
def _errors() -> Iterator[None]:
    """Turn melodex errors into one red line and exit code 1 (no traceback for users)."""
    try:
        yield
    except MelodexError as exc:
        err.print(f"[red]error:[/red] {_shown(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _shown(text: object) -> str:
    """Text (paths, reasons) safe to print with rich: its markup escaped, so a file named
    ``[live].mp3`` shows as itself, and non-UTF-8 file-name bytes shown as ``\\xNN``."""
    try:
        raw = str(text).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name produced
        raw = str(text).encode("utf-8", "backslashreplace")
    return escape(raw.decode("utf-8", "backslashreplace"))


def _json_text(data: Any) -> str:
    """JSON that any terminal encoding can print: non-UTF-8 file-name bytes (lone surrogates
    in Python strings) become ``\\udcXX`` escapes, which ``json.loads`` turns back into them."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _library(db: str | Path | None, model: str | None):  # noqa: ANN202
    from melodex.library.library import Library

    return Library(db, model=model)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int, str], None]]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(done: int, total: int, _path: str) -> None:
            speed = bar.tasks[task].speed
            bar.update(
                task, completed=done, total=total, rate=f"{speed:.1f} files/s" if speed else ""
            )

        yield update


def _print_hits(hits: list[Any], as_json: bool) -> None:
    if as_json:
        print(_json_text([h.to_json() for h in hits]))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "score", "title", "artist", "album", "at", "path"):
        table.add_column(col, overflow="fold")
    for h in hits:
        at = f"{h.segment_start:.0f}s" if h.segment_start is not None else ""
        cells = (h.title or "", h.artist or "", h.album or "", at, h.path)
        table.add_row(str(h.rank), f"{h.score:.3f}", *(_shown(c) for c in cells))
    out.print(table)


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
    as_json: JsonOption = False,
) -> None:
    """Index (or re-index incrementally) a folder of music."""
    with _errors():
        lib = _library(db, model)
        if ray is not None:
            options = {"workers": workers, "batch_size": batch}
        else:
            options = {"decode_workers": workers or 1}
        with _progress("indexing") as update:
            report = lib.index(folder, progress=update, descriptors=descriptors, ray=ray, **options)
    if as_json:
        print(
            _json_text(
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
        )
        return
    out.print(
        f"[green]{len(report.added)} indexed[/green], {len(report.updated)} updated, "
        f"{len(report.moved)} moved, {report.skipped} unchanged, {len(report.removed)} removed, "
        f"[red]{len(report.failed)} failed[/red] — {len(lib)} tracks in {_shown(lib.path)}"
    )
    if report.audio_seconds:
        out.print(
            f"{report.audio_seconds / 60:.1f} min of audio in {report.wall_seconds:.1f} s "
            f"({report.realtime_factor:.0f}x real time)"
        )
    for path, reason in report.failed:
        out.print(
            f"  [red]failed[/red] {_shown(path)}: {_shown(reason)}", highlight=False, soft_wrap=True
        )


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Any description: tags, a sentence, a mood.")],
    k: KOption = 10,
    bpm: Annotated[
        str | None, typer.Option(help="Tempo range, e.g. 60-90 (needs `index --descriptors`).")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Key or mode: minor, D, 'D minor' (needs descriptors).")
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the tracks that best match a text."""
    with _errors():
        hits = _library(db, model).search(text, k=k, bpm=bpm, key=key)
    _print_hits(hits, as_json)


@app.command()
def similar(
    track: Annotated[str, typer.Argument(help="An indexed path, any audio file, or a track id.")],
    k: KOption = 10,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the tracks that sound most like a track."""
    with _errors():
        key: str | int = int(track) if track.isdigit() and not Path(track).exists() else track
        hits = _library(db, model).similar(key, k=k)
    _print_hits(hits, as_json)


@app.command()
def tag(
    file: Annotated[Path, typer.Argument(help="An audio file.")],
    k: KOption = 10,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Zero-shot tags of a file with the model's confidences."""
    with _errors():
        tags = _library(db, model).tag(file, k=k)
    if as_json:
        print(
            json.dumps(
                {"path": str(file), "tags": [{"text": t, "score": s} for t, s in tags]}, indent=2
            )
        )
        return
    for text, score in tags:
        out.print(f"{score:6.3f}  {text}")


@app.command()
def describe(
    file: Annotated[Path, typer.Argument(help="An audio file.")],
    k: KOption = 10,
    db: DbOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """What a file sounds like: tags, nearest texts, nearest tracks in the library."""
    with _errors():
        desc = _library(db, model).describe(file, k=k)
    if as_json:
        print(json.dumps(desc.to_json(), indent=2, ensure_ascii=False))
        return
    out.print("[bold]tags[/bold]: " + ", ".join(f"{t} ({s:.2f})" for t, s in desc.tags))
    out.print("[bold]sounds like[/bold]: " + ", ".join(f"{t} ({s:.2f})" for t, s in desc.texts))
    if desc.similar:
        out.print("[bold]nearest tracks[/bold]:")
        _print_hits(desc.similar, False)


@app.command()
def info(db: DbOption = None) -> None:
    """What a library holds and which model made it."""
    with _errors():
        lib = _library(db, None)
        store = lib.store
        out.print(f"library: {lib.path}\ntracks: {len(store)}\nmodel: {store.meta.get('model')}")


@data_app.command("demo")
def data_demo(
    out_dir: Annotated[Path, typer.Argument(help="Where to write audio and manifest.jsonl.")],
    n_tracks: Annotated[int, typer.Option("--tracks", min=1)] = 48,
    seconds: Annotated[float, typer.Option(min=2.0)] = 30.0,
    seed: int = 0,
    formats: Annotated[str, typer.Option(help="Comma-separated: flac,ogg,mp3,m4a,wav.")] = "flac",
) -> None:
    """Render the demo corpus: real compositions (music21) played by a GM soundfont."""
    from melodex.data.demo import build_demo

    with _errors(), _progress("rendering") as update:
        manifest = build_demo(
            out_dir,
            n_tracks=n_tracks,
            seconds=seconds,
            seed=seed,
            formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
            progress=lambda done, total: update(done, total, ""),
        )
    out.print(f"manifest: {manifest}")


def _print_train_result(result: Any) -> None:
    if result.resumed_from:
        out.print(f"resumed from {result.resumed_from}")
    for split, metrics in result.metrics.items():
        shown = ", ".join(
            f"{k} {metrics[k]:.3f}" for k in ("R@1", "R@5", "R@10", "median_rank") if k in metrics
        )
        out.print(f"{split}: {shown}")
    out.print(f"model: {result.model_dir}  (use with --model {result.model_dir})")


OverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "-o", "--set", help="Override a config field, e.g. -o optim.epochs=3 (repeatable)."
    ),
]


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="A YAML/JSON training config (see configs/).")],
    overrides: OverrideOption = None,
    resume: Annotated[bool, typer.Option(help="Resume from the run's last checkpoint.")] = True,
) -> None:
    """Train a joint model from a config; the result is a model folder the library can use."""
    from melodex.lab.config import load_config
    from melodex.lab.train import train as run

    with _errors():
        cfg = load_config(config, overrides or [])
        with _progress("caching features") as update:
            result = run(
                cfg,
                resume=resume,
                progress=lambda _stage, d, t: update(d, t, ""),
                enable_progress_bar=True,
            )
    _print_train_result(result)


@app.command()
def finetune(
    manifest: Annotated[
        Path, typer.Argument(help="Your manifest (JSONL/Parquet) with train/valid splits.")
    ],
    name: Annotated[str, typer.Option(help="Run and model name.")] = "finetuned",
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    output_dir: Annotated[Path, typer.Option("--output-dir")] = Path("runs"),
    overrides: OverrideOption = None,
) -> None:
    """Adapt the heads of a model to your own manifest (frozen pretrained parts, cached features)."""
    from importlib import resources

    from melodex.lab.config import load_config
    from melodex.lab.train import train as run

    base = Path(str(resources.files("melodex") / "lab" / "finetune.yaml"))
    sets = [
        f"data.manifest={json.dumps(str(manifest))}",
        f"name={json.dumps(name)}",
        f"optim.epochs={epochs}",
        f"output_dir={json.dumps(str(output_dir))}",
    ]
    with _errors():
        cfg = load_config(base, sets + (overrides or []))
        with _progress("caching features") as update:
            result = run(
                cfg, progress=lambda _stage, d, t: update(d, t, ""), enable_progress_bar=True
            )
    _print_train_result(result)


@data_app.command("word2vec")
def data_word2vec(
    manifest: Annotated[
        Path, typer.Argument(help="Manifest whose train-split texts to learn from.")
    ],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the word vectors.")],
    dim: Annotated[int, typer.Option(min=2)] = 300,
    seed: int = 0,
) -> None:
    """Train a domain word2vec on a manifest's music text (init for word-level text encoders)."""
    from melodex.data.manifest import read_manifest
    from melodex.encoders.word2vec import music_texts, train_word2vec

    with _errors():
        items = [i for i in read_manifest(manifest, check_audio=False) if i["split"] == "train"]
        w2v = train_word2vec(music_texts(items), vector_size=dim, seed=seed, workers=1)
        w2v.save(out_dir)
    out.print(f"word2vec: {out_dir} (use as text_encoder.params.w2v in a config)")


@app.command("fit-baseline")
def fit_baseline_command(
    kind: Annotated[str, typer.Argument(help="cca, wsabie or random.")],
    manifest: Annotated[Path, typer.Argument(help="Manifest; its train split is used.")],
    out_dir: Annotated[Path, typer.Argument(help="Where the model folder goes.")],
    dim: Annotated[int, typer.Option(min=2)] = 64,
) -> None:
    """Fit a linear baseline (the two-branch seed's CCA/WSABIE) and save it as a model folder."""
    from melodex.evaluate.fit import fit_manifest_baseline

    with _errors(), _progress("features") as update:
        model = fit_manifest_baseline(
            kind, manifest, name=out_dir.name, dim=dim, progress=lambda d, t: update(d, t, "")
        )
        model.save(out_dir)
    out.print(f"model: {out_dir}  (use with --model {out_dir})")


DEMO_QUERIES = (
    "a choir singing",
    "string quartet",
    "church organ",
    "a lively irish fiddle tune",
    "slow flute melody",
    "music for meditation in a forest",
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
    from melodex.data.demo import build_demo
    from melodex.data.manifest import read_manifest

    with _errors():
        with _progress("rendering demo music") as update:
            manifest = build_demo(
                out_dir,
                n_tracks=n_tracks,
                seconds=seconds,
                formats=("flac", "ogg", "mp3", "m4a"),
                progress=lambda done, total: update(done, total, ""),
            )
        truth = {
            str((manifest.parent / item["audio"]).resolve()): item
            for item in read_manifest(manifest)
        }
        lib = _library(db, None)
        with _progress("indexing") as update:
            report = lib.index(out_dir, progress=update)
        out.print(
            f"indexed {len(report.added) + len(report.updated)} new, {report.skipped} unchanged, "
            f"{len(report.failed)} failed; {len(lib)} tracks in {lib.path} "
            f"({lib.index_kind} search)"
        )
        for query in DEMO_QUERIES:
            out.print(f"\n[bold]search:[/bold] {query!r}")
            for hit in lib.search(query, k=k):
                item = truth.get(hit.path, {})
                extra = item.get("extra", {})
                what = ", ".join(
                    [*extra.get("instruments", []), extra.get("form", ""), extra.get("tempo", "")]
                )
                out.print(
                    f"  {hit.rank}. {hit.score:.3f}  {hit.title} ({hit.artist})"
                    f"  [dim]— really: {what.strip(', ')}[/dim]",
                    highlight=False,
                    soft_wrap=True,
                )


# --------------------------------------------------------------------------- evaluation


def _print_metric_tables(runs: list[tuple[str, dict[str, Any]]]) -> None:
    from melodex.evaluate.report import metric_tables

    for task, header, rows in metric_tables(runs):
        table = Table(title=task, show_header=True, header_style="bold", title_justify="left")
        for col in header:
            table.add_column(col, overflow="fold")
        for row in rows:  # the interval goes on a second line, so tables fit a terminal
            table.add_row(*(cell.replace(" [", "\n[", 1) for cell in row))
        out.print(table)


@app.command()
def evaluate(
    manifest: Annotated[
        Path, typer.Option("--manifest", help="The JSONL manifest to evaluate on.")
    ],
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="Model name or folder (repeatable; default melodex-base)."),
    ] = None,
    split: Annotated[str, typer.Option(help="train, valid, test or all.")] = "test",
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            help="Task name, optionally with options: 'zeroshot:field=extra.form' (repeatable; "
            "default: all of caption, track2text, tag, tag-all, zeroshot, triplets, artist, unseen).",
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where results and figures go.")] = Path(
        "eval"
    ),
    seed: Annotated[int, typer.Option(help="Seeds sampling and bootstrap intervals.")] = 0,
    cache: Annotated[
        Path | None,
        typer.Option(help="Embedding cache folder (default: the user cache dir)."),
    ] = None,
    projection: Annotated[str, typer.Option(help="Joint-space map: umap or pca.")] = "umap",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG figures.")] = True,
) -> None:
    """Evaluate models on a manifest split: results.json, report.md and figures in --out."""
    import shlex

    from melodex.evaluate.embed import default_cache_dir
    from melodex.evaluate.report import build_results, markdown_report, write_results
    from melodex.evaluate.tasks import run_tasks
    from melodex.model import DEFAULT_MODEL, load_model

    if projection not in ("umap", "pca"):
        raise typer.BadParameter(
            f"must be umap or pca, not {projection!r}", param_hint="--projection"
        )
    names = models or [DEFAULT_MODEL]
    args = [a for n in names for a in ("--model", n)]
    args += ["--manifest", str(manifest), "--split", split]
    args += [a for t in tasks or [] for a in ("--task", t)]
    args += ["--out", str(out_dir), "--seed", str(seed), "--projection", projection]
    command = shlex.join(["melodex", "evaluate", *args, *([] if plots else ["--no-plots"])])
    with _errors():
        loaded = {}
        for name in names:
            key = name if name not in loaded else f"{name} #{len(loaded) + 1}"
            loaded[key] = load_model(name)
        with _progress("embedding") as update:
            run = run_tasks(
                loaded,
                manifest,
                split,
                tasks or None,
                seed=seed,
                cache_dir=cache or default_cache_dir(),
                progress=lambda _stage, d, t: update(d, t, ""),
            )
        results = build_results(run, command=command)
        out_dir.mkdir(parents=True, exist_ok=True)
        figures: list[Path] = []
        if plots:
            try:
                from melodex.evaluate.plots import plot_joint_space, plot_tag_ap
            except ImportError as exc:
                err.print(f"[yellow]no figures:[/yellow] {exc} (pip install matplotlib umap-learn)")
            else:
                figures += plot_tag_ap(results, out_dir)
                first = run.models[0]
                target = out_dir / "joint_space.png"
                how = plot_joint_space(
                    first.model, run.items, first.embeddings, target, seed=seed, method=projection
                )
                results["joint_space"] = {"model": first.name, "projection": how}
                figures.append(target)
        write_results(results, out_dir / "results.json")
        (out_dir / "report.md").write_text(markdown_report(results, figures=figures))
    _print_metric_tables(list(results["models"].items()))
    for name, entry in results["models"].items():
        for f in entry["failures"]:
            out.print(f"[red]failed[/red] {name}: {f['id']}: {f['reason']}", highlight=False)
    out.print(f"results: {out_dir / 'results.json'}  report: {out_dir / 'report.md'}")


@app.command()
def compare(
    results: Annotated[
        list[Path], typer.Argument(help="results.json files of `melodex evaluate`.")
    ],
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
) -> None:
    """Compare evaluation results side by side, task by task."""
    from melodex.evaluate.report import compare as compare_md
    from melodex.evaluate.report import load_results

    with _errors():
        if markdown:
            print(compare_md(results), end="")
            return
        runs = []
        for i, path in enumerate(results, start=1):
            for name, entry in load_results(path)["models"].items():
                runs.append((f"{name} ({i}: {path.parent.name or path.name})", entry))
    _print_metric_tables(runs)


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
            help="Require 'Authorization: Bearer TOKEN' (or ?token=) on every /api request.",
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
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not token:
        if not insecure:
            err.print(
                f"[red]error:[/red] --host {host} exposes the library beyond this machine; "
                "set --token (or MELODEX_TOKEN), or pass --insecure to serve without one"
            )
            raise typer.Exit(2)
        err.print(
            f"[yellow]warning:[/yellow] serving on {host} with no token: anyone who can "
            "reach this port can search and download your music"
        )
    import uvicorn

    from melodex.serve import ServeConfig, create_app

    with _errors():
        config = ServeConfig(
            db=db,
            model=model,
            token=token,
            max_upload_bytes=max_upload_mb * 1024 * 1024,
            decode_timeout=decode_timeout,
        )
        web = create_app(config)
    shown = host if ":" not in host else f"[{host}]"
    err.print(
        f"melodex: serving {web.state.service.path} on http://{shown}:{port}/", highlight=False
    )
    uvicorn.run(web, host=host, port=port, log_level="warning")


# ---------------------------------------------------------------------------- filter / enrich


def _pair_line(pair: Any) -> str:
    text = pair.text if len(pair.text) <= 90 else pair.text[:87] + "..."
    return f"  {pair.score:+.3f}  {pair.item_id}  [{pair.kind}] {text}"


@app.command("filter")
def filter_command(
    manifest: Annotated[Path, typer.Argument(help="Manifest (JSONL/Parquet) to filter.")],
    model: Annotated[
        str, typer.Option("--model", help="Joint model name or folder that scores the pairs.")
    ] = "melodex-base",
    threshold: Annotated[
        float, typer.Option(help="Drop pairs whose cosine is below this (WikiMuTe: 0.0).")
    ] = 0.0,
    out_kept: Annotated[Path | None, typer.Option("--out-kept", help="Kept manifest.")] = None,
    out_dropped: Annotated[
        Path | None, typer.Option("--out-dropped", help="Dropped pairs manifest.")
    ] = None,
    kinds: Annotated[
        str, typer.Option(help="Comma-separated text kinds to score.")
    ] = "caption,review,mined,pseudo-caption",
    keep_emptied: Annotated[
        bool,
        typer.Option(
            "--keep-emptied", help="Keep items that lose every scored text (default: drop them)."
        ),
    ] = False,
    examples: Annotated[int, typer.Option(min=0, help="Examples shown per group.")] = 3,
    as_json: JsonOption = False,
) -> None:
    """Cross-modal relevance filtering: score every (audio, text) pair, drop the unrelated ones."""
    from melodex.mining.filter import filter_manifest

    with _errors(), _progress("embedding tracks") as update:
        result = filter_manifest(
            manifest,
            model=model,
            threshold=threshold,
            kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            drop_emptied=not keep_emptied,
            out_kept=out_kept,
            out_dropped=out_dropped,
            progress=update,
        )
    shown = result.examples(examples)
    if as_json:
        payload = {
            "counts": result.counts,
            "threshold": result.threshold,
            "model": result.scorer_name,
            "scores": result.score_summary(),
            "examples": {
                group: [
                    {"id": p.item_id, "kind": p.kind, "text": p.text, "score": p.score}
                    for p in pairs
                ]
                for group, pairs in shown.items()
            },
            "kept": str(out_kept) if out_kept else None,
            "dropped": str(out_dropped) if out_dropped else None,
        }
        print(json.dumps(payload, indent=2))
        return
    c = result.counts
    out.print(
        f"{c['scored_pairs']} pairs scored by {result.scorer_name} (threshold {threshold:g}): "
        f"kept {c['kept_pairs']}, dropped {c['dropped_pairs']}, unscored {c['unscored_pairs']}; "
        f"{c['removed_items']} item(s) lost every scored text"
    )
    for group, label in (("dropped", "lowest dropped"), ("borderline", "borderline kept")):
        if shown[group]:
            out.print(f"{label}:", highlight=False)
            for pair in shown[group]:
                out.print(_pair_line(pair), highlight=False, markup=False)
    for path, label in ((out_kept, "kept"), (out_dropped, "dropped")):
        if path:
            out.print(f"{label}: {path}")


@app.command("enrich")
def enrich_command(
    manifest: Annotated[Path, typer.Argument(help="Manifest (JSONL/Parquet) to enrich.")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the enriched manifest.")],
    captions: Annotated[
        bool, typer.Option("--captions", help="Add pseudo-captions from the tags.")
    ] = False,
    metadata: Annotated[
        bool, typer.Option("--metadata", help="Add title/artist/album and similar-artist text.")
    ] = False,
    similar_artists: Annotated[
        Path | None,
        typer.Option(
            "--similar-artists", help="CSV artist,similar_artist[,weight] (default: from tags)."
        ),
    ] = None,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url", help="OpenAI-compatible base URL for captions (default: templates)."
        ),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option("--llm-model", help="Model name sent to the LLM endpoint.")
    ] = None,
    n_captions: Annotated[int, typer.Option(min=1, help="Pseudo-captions per track.")] = 1,
    splits: Annotated[
        str | None, typer.Option(help="Comma-separated splits to enrich (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the caption and sentence choices.")] = 0,
) -> None:
    """Add TTMR++ text: pseudo-captions (--captions) and metadata sentences (--metadata).

    With neither flag, both are added. The artist graph comes from --similar-artists or, when
    absent, from the artists' co-occurring tags (train split).
    """
    from melodex.data.manifest import read_manifest, write_manifest
    from melodex.enrich import enrich_items
    from melodex.enrich.captions import LLMBackend
    from melodex.enrich.metadata import artist_graph_from_csv
    from melodex.mining.filter import rebase_audio

    if not captions and not metadata:
        captions = metadata = True
    with _errors():
        items = read_manifest(manifest, check_audio=False)
        graph = artist_graph_from_csv(similar_artists) if similar_artists else None
        llm = LLMBackend(base_url=llm_url, model=llm_model) if llm_url else None
        with _progress("enriching") as update:
            enriched = enrich_items(
                items,
                captions=captions,
                metadata=metadata,
                n_captions=n_captions,
                graph=graph,
                splits=[s.strip() for s in splits.split(",")] if splits else None,
                seed=seed,
                llm=llm,
                progress=lambda d, t: update(d, t, ""),
            )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(
            out_path, rebase_audio(enriched, src_root=manifest.parent, dst_root=out_path.parent)
        )
    added = sum(len(e["texts"]) - len(i["texts"]) for e, i in zip(enriched, items, strict=True))
    out.print(f"{added} text(s) added to {len(items)} item(s): {out_path}")


# ---------------------------------------------------------------------------- mine (text mining)

mine_app = typer.Typer(
    no_args_is_help=True,
    help="Mine music descriptions from text (WikiMuTe sentence/aspect models).",
)
app.add_typer(mine_app, name="mine")


@mine_app.command("train")
def mine_train(
    task: Annotated[str, typer.Option("--task", help="sentences or aspects.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the trained miner.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Span annotations JSONL (default: the packaged set)."),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 5,
    weak: Annotated[
        bool, typer.Option("--weak", help="Add vocabulary-matched weak labels to training.")
    ] = False,
    weak_text: Annotated[
        Path | None,
        typer.Option(
            "--weak-text",
            help="Text for --weak: a one-paragraph-a-line file or a folder of documents "
            "(default: the packaged unannotated.txt).",
        ),
    ] = None,
    backbone: Annotated[
        str | None, typer.Option(help="Checkpoint folder or hub name (default: MiniLM-L6).")
    ] = None,
    max_length: Annotated[int, typer.Option(min=16)] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-4,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    held_out: Annotated[float, typer.Option(help="Held-out fraction (hash split).")] = 0.2,
    seed: int = 0,
    as_json: JsonOption = False,
) -> None:
    """Train a sentence or aspect miner; print held-out token/span precision, recall and F1."""
    from melodex.mining.extract import MinerConfig, train_miner, trivial_baseline
    from melodex.mining.spans import (
        load_packaged_annotations,
        read_annotations,
        split_annotations,
    )

    with _errors():
        config = MinerConfig(
            task=task,
            backbone=backbone or "",
            max_length=max_length,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
        )
        anns = read_annotations(data) if data else load_packaged_annotations()
        texts: list[str] = []
        if weak:
            from melodex.mining.sources import iter_documents
            from melodex.mining.vocab import read_text_lines

            source = weak_text or Path(__file__).parent / "mining" / "data" / "unannotated.txt"
            if source.is_dir():
                texts = [p for d in iter_documents(source) for p in d.text.splitlines() if p]
            else:
                texts = read_text_lines(str(source))
        with _progress("training") as update:
            report = train_miner(
                anns,
                config,
                held_out=held_out,
                weak_texts=texts,
                progress=lambda d, t, _loss: update(d, t, ""),
            )
        report.extractor.save(out_dir)
        baseline = trivial_baseline(split_annotations(anns, held_out=held_out)[1], task)
    levels = ("token", "span_exact", "span_overlap")
    if as_json:
        print(
            json.dumps(
                {
                    "task": task,
                    "model": str(out_dir),
                    "train": report.n_train,
                    "held_out": report.n_held_out,
                    "weak": report.n_weak,
                    "seconds": round(report.seconds, 1),
                    "metrics": {k: report.metrics[k] for k in levels if k in report.metrics},
                    "baseline_all_positive": baseline,
                },
                indent=2,
            )
        )
        return
    out.print(
        f"{task}: trained on {report.n_train} paragraphs (+{report.n_weak} weak), "
        f"held out {report.n_held_out}, {report.seconds:.0f} s"
    )
    table = Table(show_header=True, header_style="bold")
    for col in ("level", "precision", "recall", "F1", "F1 (mark all)"):
        table.add_column(col)
    for level in levels:
        if level in report.metrics:
            m = report.metrics[level]
            table.add_row(
                level,
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
                f"{baseline[level]['f1']:.3f}",
            )
    out.print(table)
    out.print(f"model: {out_dir}")


@mine_app.command("extract")
def mine_extract(
    input_folder: Annotated[
        Path, typer.Argument(help="Folder of .wiki/.mediawiki/.xml/.html/.txt documents.")
    ],
    models: Annotated[
        list[Path],
        typer.Option("--model", help="A trained miner folder (repeatable: sentences, aspects)."),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Manifest JSONL to write.")],
    threshold: Annotated[
        float | None, typer.Option(help="Token probability threshold (default: the model's).")
    ] = None,
    keep_empty: Annotated[
        bool, typer.Option("--keep-empty", help="Keep references with nothing mined.")
    ] = False,
) -> None:
    """Find audio references and their texts, run the miners, write mined texts per reference."""
    from melodex.data.manifest import write_manifest
    from melodex.mining.extract import SpanExtractor, mine_manifest_records
    from melodex.mining.sources import mine_records

    with _errors():
        records = mine_records(input_folder)
        miners = [SpanExtractor.load(m) for m in models]
        mined = mine_manifest_records(records, miners, threshold=threshold)
        kept = [r for r in mined if r["texts"] or keep_empty]
        write_manifest(out_path, kept)
    n_texts = sum(len(r["texts"]) for r in kept)
    out.print(
        f"{len(records)} audio reference(s); {n_texts} mined text(s) for {len(kept)} of them: "
        f"{out_path}"
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; ``argv`` lets tests run the CLI in-process."""
    args = list(argv if argv is not None else sys.argv[1:])
    app(args=optional_ray_address(args), prog_name="melodex")


_RAY_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")


def optional_ray_address(args: list[str]) -> list[str]:
    """Let `--ray` take an optional value: a bare `--ray` means a local cluster.

    Click options cannot have optional values, so a `--ray` not followed by something that
    looks like a Ray address (auto, local, host:port, ray://...) becomes `--ray local`.
    """
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == "--ray" and (i + 1 == len(args) or not _RAY_ADDRESS.match(args[i + 1])):
            out.append("local")
    return out
