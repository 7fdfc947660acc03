"""Lab commands: train, finetune, fit-baseline, evaluate, compare, distill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from melodex.cli.app import app
from melodex.cli.common import (
    OverrideOption,
    err,
    errors,
    out,
    print_json,
    progress_bar,
    shown,
)
from melodex.cli.output import print_metric_tables


def _print_train_result(result: Any) -> None:
    if result.resumed_from:
        out.print(f"resumed from {shown(result.resumed_from)}")
    skipped = getattr(result, "skipped", [])
    if skipped:  # unreadable items left out (data.on_unreadable): say so, name a few
        err.print(f"skipped {len(skipped)} unreadable item(s) (listed in skipped.json):")
        for entry in skipped[:5]:
            err.print(f"  {entry['error']}", markup=False, highlight=False)
    for split, metrics in result.metrics.items():
        values = ", ".join(
            f"{k} {metrics[k]:.3f}" for k in ("R@1", "R@5", "R@10", "median_rank") if k in metrics
        )
        out.print(f"{split}: {values}")
    out.print(f"model: {shown(result.model_dir)}  (use with --model {shown(result.model_dir)})")


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="A YAML/JSON training config (see configs/).")],
    overrides: OverrideOption = None,
    resume: Annotated[bool, typer.Option(help="Resume from the run's last checkpoint.")] = True,
    accelerator: Annotated[
        str | None, typer.Option(help="cpu, gpu, auto (trainer.accelerator).")
    ] = None,
    devices: Annotated[
        str | None, typer.Option(help="Devices per node: a count or 'auto' (trainer.devices).")
    ] = None,
    num_nodes: Annotated[
        int | None, typer.Option("--num-nodes", min=1, help="Machines (trainer.num_nodes).")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="auto, ddp, ddp_spawn, ddp_fork (trainer.strategy).")
    ] = None,
) -> None:
    """Train a joint model from a config; the result is a model folder the library can use.

    Data parallel: ``--devices N --strategy ddp`` (and ``--num-nodes M`` on each of M machines);
    ``optim.batch_size`` is per device. See docs/training.md."""
    from melodex.lab.config import load_config
    from melodex.lab.train import train as run

    sets = list(overrides or [])
    for key, value in (
        ("accelerator", accelerator),
        ("devices", devices),
        ("num_nodes", num_nodes),
        ("strategy", strategy),
    ):
        if value is not None:
            text = str(value)
            sets.append(f"trainer.{key}={text if text.isdigit() else json.dumps(text)}")
    with errors():
        cfg = load_config(config, sets)
        with progress_bar("caching features") as update:
            result = run(cfg, resume=resume, progress=update, enable_progress_bar=True)
    if result.is_global_zero:  # under ddp the other ranks run this command too
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
    with errors():
        cfg = load_config(base, sets + (overrides or []))
        with progress_bar("caching features") as update:
            result = run(cfg, progress=update, enable_progress_bar=True)
    _print_train_result(result)


@app.command("fit-baseline")
def fit_baseline_command(
    kind: Annotated[str, typer.Argument(help="cca, wsabie or random.")],
    manifest: Annotated[Path, typer.Argument(help="Manifest; its train split is used.")],
    out_dir: Annotated[Path, typer.Argument(help="Where the model folder goes.")],
    dim: Annotated[int, typer.Option(min=2)] = 64,
) -> None:
    """Fit a linear baseline (the two-branch seed's CCA/WSABIE) and save it as a model folder."""
    from melodex.evaluate.fit import fit_manifest_baseline

    with errors(), progress_bar("features", unit="tracks") as update:
        model = fit_manifest_baseline(kind, manifest, name=out_dir.name, dim=dim, progress=update)
        model.save(out_dir)
    out.print(f"model: {shown(out_dir)}  (use with --model {shown(out_dir)})")


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
            help="Task name, optionally with options: 'zeroshot:field=extra.form', "
            "'tag:tags=ttmr-50', 'ttmrpp-artist:olga=DIR' (repeatable; default: caption, "
            "track2text, tag, tag-all, zeroshot, tag-triplets, same-artist, unseen; "
            "docs/protocols.md lists all).",
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
    conventions: Annotated[
        str | None,
        typer.Option(
            "--conventions",
            help="Metric convention for every task: melodex, ttmr, ttmr-pp or clap, optionally "
            "with options, e.g. 'melodex:rank_base=0,empty=zero,ties=index' (fields: rank_base, "
            "median, recall, ap_norm, empty, ties, ndcg_ties, pair_ties). Default: each "
            "task's own (the paper's for ttmrpp-* and tag-ttmr-*, else melodex).",
        ),
    ] = None,
) -> None:
    """Evaluate models on a manifest split: results.json, report.md and figures in --out."""
    from melodex.evaluate.run import evaluate_models

    with errors(), progress_bar("embedding", unit="tracks") as update:
        done = evaluate_models(
            models or [],
            manifest,
            split=split,
            tasks=tasks,
            out_dir=out_dir,
            seed=seed,
            cache_dir=cache,
            projection=projection,
            plots=plots,
            progress=update,
            conventions=conventions,
        )
    for warning in done.warnings:
        err.print(f"[yellow]{shown(warning)}[/yellow]")
    print_metric_tables(list(done.results["models"].items()))
    for name, entry in done.results["models"].items():
        for f in entry["failures"]:
            out.print(
                f"[red]failed[/red] {shown(name)}: {shown(f['id'])}: {shown(f['reason'])}",
                highlight=False,
            )
    out.print(f"results: {shown(done.results_path)}  report: {shown(done.report_path)}")


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

    with errors():
        if markdown:
            print(compare_md(results), end="")
            return
        runs = []
        for i, path in enumerate(results, start=1):
            for name, entry in load_results(path)["models"].items():
                runs.append((f"{name} ({i}: {path.parent.name or path.name})", entry))
    print_metric_tables(runs)


@app.command("distill")
def distill_command(
    teacher: Annotated[
        str, typer.Option("--teacher", help="The model to learn from: name, folder or spec.")
    ],
    audio: Annotated[Path, typer.Option("--audio", help="A music folder or a manifest.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the student's folder goes.")],
    epochs: Annotated[int, typer.Option(min=1)] = 300,
    hidden: Annotated[int, typer.Option(min=1)] = 256,
    heldout: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Distil a fast student (musicnn features + a head) from a teacher on your own audio.

    The student embeds audio ~as fast as melodex-base and answers text through the teacher's
    text tower; the report gives its agreement with the teacher on held-out tracks and the
    index speed of student, teacher and melodex-base.
    """
    from melodex.lab.distill import distill
    from melodex.models import load_model

    with errors():
        model = load_model(teacher)
        with progress_bar("distilling", unit="steps") as update:
            student, report = distill(
                model,
                audio,
                heldout=heldout,
                epochs=epochs,
                hidden=hidden,
                seed=seed,
                progress=update,
            )
        student.save(out_dir)
        (out_dir / "distill.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if as_json:
        print_json(report.to_dict())
        return
    out.print(f"student: {shown(out_dir)}  (use with --model {shown(out_dir)})")
    out.print(
        f"held-out tracks {report.n_heldout}: cosine to the teacher {report.heldout_cosine:.3f} "
        f"(min {report.heldout_cosine_min:.3f}); top-{report.top_k} overlap on "
        f"{len(report.queries)} queries {report.top10_overlap:.3f}"
    )
    for label, s in report.speed.items():
        out.print(
            f"index speed {label}: {s['tracks_per_s']:.2f} tracks/s, "
            f"{s['x_realtime']:.1f}x real time ({s['tracks']} tracks)"
        )
