"""Dataset commands: loading a release, the demo corpus, domain word vectors, relevance
filtering, enrichment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from melodex.cli.app import app, data_app
from melodex.cli.common import JsonOption, err, errors, out, print_json, progress_bar, shown


def _loader_options(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (numbers, true, null, lists)."""
    import json

    from melodex.errors import ParameterError

    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ParameterError(f"--option must be key=value, not {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _print_load_report(report: dict[str, Any], *, shown_missing: int = 10) -> None:
    written = report["items_written"]
    out.print(
        f"{shown(report['dataset'])}: {written} item(s) written, "
        f"{report['items_with_audio']} with audio, {report['missing_audio']} missing audio",
        highlight=False,
    )
    splits = ", ".join(f"{k} {v}" for k, v in report["splits"].items())
    out.print(f"  splits: {splits}", highlight=False)
    texts = ", ".join(f"{shown(k)} {v}" for k, v in report["texts"].items()) or "none"
    out.print(f"  texts: {texts}", highlight=False)
    if len(report["text_sources"]) > 1:
        sources = ", ".join(f"{shown(k)} {v}" for k, v in report["text_sources"].items())
        out.print(f"  text sources: {sources}", highlight=False)
    top = ", ".join(f"{shown(t)} ({n})" for t, n in report["top_tags"])
    out.print(f"  tags: {report['tags']} distinct{'; most used: ' + top if top else ''}",
              highlight=False)  # fmt: skip
    if report["items_without_text"]:
        out.print(f"  items without any text: {report['items_without_text']}", highlight=False)
    ids = report["missing_audio_ids"]
    if ids:
        more = (
            f" (+{len(ids) - shown_missing} more; --json lists all)"
            if len(ids) > shown_missing
            else ""
        )
        listed = ", ".join(shown(i) for i in ids[:shown_missing])
        out.print(f"  missing audio: {listed}{more}", highlight=False)
    for note in report["notes"]:
        out.print(f"  note: {shown(note)}", highlight=False)
    for warning in report["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {shown(warning)}", highlight=False)
    if report["manifest"]:
        out.print(f"manifest: {shown(report['manifest'])}", highlight=False)


@data_app.command("load")
def data_load(
    dataset: Annotated[
        str,
        typer.Argument(
            help="magnatagatune (mtt), msd-ecals, musiccaps, song-describer, wikimute, mard, "
            "gtzan, fma; olga and dim-sim for TTMR++'s similarity protocols."
        ),
    ],
    root: Annotated[Path, typer.Argument(help="The dataset's folder, as its release unpacks.")],
    out_path: Annotated[Path, typer.Option("--out", help="Manifest to write (.jsonl/.parquet).")],
    audio_root: Annotated[
        Path | None, typer.Option("--audio-root", help="Where the audio is (default: per dataset).")
    ] = None,
    options: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="A loader option key=value, e.g. variant=filtered_mc, tag_list=mtt-top50, "
            "npy=ttmr-pp (repeatable; docs/datasets.md lists them).",
        ),
    ] = None,
    allow_missing_audio: Annotated[
        bool,
        typer.Option(
            "--allow-missing-audio",
            help="Write every item from the metadata alone, audio or not, and list the missing.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read a dataset release into a manifest and report what it holds.

    Items whose audio is absent are left out (and listed) unless --allow-missing-audio; exits 1
    when nothing is written.
    """
    from melodex.data.load_report import load_report
    from melodex.data.loaders import load_dataset, write_loaded

    with errors():
        result = load_dataset(dataset, root, audio_root=audio_root, **_loader_options(options))
        written = result.every_item if allow_missing_audio else result.items
        path = (
            write_loaded(result, out_path, include_missing=allow_missing_audio) if written else None
        )
        report = load_report(result, manifest=path, include_missing=allow_missing_audio)
    if as_json:
        print_json(report)
    else:
        _print_load_report(report)
    if not written:
        err.print(
            "[red]error:[/red] no item to write"
            + (
                " (all audio missing: --allow-missing-audio writes them anyway)"
                if result.missing_audio
                else ""
            ),
            highlight=False,
        )
        raise typer.Exit(1)


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

    with errors(), progress_bar("rendering", unit="tracks") as update:
        manifest = build_demo(
            out_dir,
            n_tracks=n_tracks,
            seconds=seconds,
            seed=seed,
            formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
            progress=update,
        )
    out.print(f"manifest: {shown(manifest)}")


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

    with errors():
        items = [i for i in read_manifest(manifest, check_audio=False) if i["split"] == "train"]
        w2v = train_word2vec(music_texts(items), vector_size=dim, seed=seed, workers=1)
        w2v.save(out_dir)
    out.print(f"word2vec: {shown(out_dir)} (use as text_encoder.params.w2v in a config)")


def _pair_line(pair: Any) -> str:
    text = pair.text if len(pair.text) <= 90 else pair.text[:87] + "..."
    return f"  {pair.score:+.3f}  {shown(pair.item_id)}  [{shown(pair.kind)}] {shown(text)}"


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

    with errors(), progress_bar("embedding tracks", unit="tracks") as update:
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
    picked = result.examples(examples)
    if as_json:
        print_json(
            {
                "counts": result.counts,
                "threshold": result.threshold,
                "model": result.scorer_name,
                "scores": result.score_summary(),
                "examples": {
                    group: [
                        {"id": p.item_id, "kind": p.kind, "text": p.text, "score": p.score}
                        for p in pairs
                    ]
                    for group, pairs in picked.items()
                },
                "kept": str(out_kept) if out_kept else None,
                "dropped": str(out_dropped) if out_dropped else None,
            }
        )
        return
    c = result.counts
    out.print(
        f"{c['scored_pairs']} pairs scored by {shown(result.scorer_name)} (threshold "
        f"{threshold:g}): kept {c['kept_pairs']}, dropped {c['dropped_pairs']}, unscored "
        f"{c['unscored_pairs']}; {c['removed_items']} item(s) lost every scored text"
    )
    for group, label in (("dropped", "lowest dropped"), ("borderline", "borderline kept")):
        if picked[group]:
            out.print(f"{label}:", highlight=False)
            for pair in picked[group]:
                out.print(_pair_line(pair), highlight=False)
    for path, label in ((out_kept, "kept"), (out_dropped, "dropped")):
        if path:
            out.print(f"{label}: {shown(path)}")


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
    with errors():
        items = read_manifest(manifest, check_audio=False)
        graph = artist_graph_from_csv(similar_artists) if similar_artists else None
        llm = LLMBackend(base_url=llm_url, model=llm_model) if llm_url else None
        with progress_bar("enriching") as update:
            enriched = enrich_items(
                items,
                captions=captions,
                metadata=metadata,
                n_captions=n_captions,
                graph=graph,
                splits=[s.strip() for s in splits.split(",")] if splits else None,
                seed=seed,
                llm=llm,
                progress=update,
            )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(
            out_path, rebase_audio(enriched, src_root=manifest.parent, dst_root=out_path.parent)
        )
    added = sum(len(e["texts"]) - len(i["texts"]) for e, i in zip(enriched, items, strict=True))
    out.print(f"{added} text(s) added to {len(items)} item(s): {shown(out_path)}")
