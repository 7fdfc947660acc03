"""One evaluation run end to end: load the models, run the tasks, write results and figures.

This is what ``melodex evaluate`` does; the CLI only parses options and prints the tables.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melodex.errors import bad_value
from melodex.progress import ProgressFn

PROJECTIONS = ("umap", "pca")


@dataclass
class EvaluationOutput:
    """What an evaluation wrote, and what it could not do (for the door to show)."""

    results: dict[str, Any]
    results_path: Path
    report_path: Path
    figures: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def evaluation_command(
    models: Sequence[str],
    manifest: Path,
    split: str,
    tasks: Sequence[str],
    out_dir: Path,
    *,
    seed: int,
    projection: str,
    plots: bool,
    conventions: str | None = None,
) -> str:
    """The ``melodex evaluate`` command line that reproduces a run (recorded in results.json)."""
    args = [a for n in models for a in ("--model", n)]
    args += ["--manifest", str(manifest), "--split", split]
    args += [a for t in tasks for a in ("--task", t)]
    args += ["--out", str(out_dir), "--seed", str(seed), "--projection", projection]
    args += ["--conventions", conventions] if conventions else []
    return shlex.join(["melodex", "evaluate", *args, *([] if plots else ["--no-plots"])])


def evaluate_models(
    models: Sequence[str],
    manifest: Path,
    *,
    split: str = "test",
    tasks: Sequence[str] | None = None,
    out_dir: Path = Path("eval"),
    seed: int = 0,
    cache_dir: Path | None = None,
    projection: str = "umap",
    plots: bool = True,
    progress: ProgressFn | None = None,
    conventions: str | None = None,
) -> EvaluationOutput:
    """Evaluate named models (built-in names, folders or family specs) on a manifest split.

    Writes ``results.json``, ``report.md`` and, with ``plots``, PNG figures into ``out_dir``.
    ``conventions`` (``melodex``, ``ttmr``, ``ttmr-pp``, ``clap``, optionally with
    ``:key=value,...``) forces one metric convention on every task; None lets each task use its
    own (the paper's for the papers' protocols). Every result records the one it used.
    """
    from melodex.evaluate.metrics import parse_convention

    if conventions is not None:
        parse_convention(conventions)  # a bad spec fails before any model loads
    from melodex.evaluate.embed import default_cache_dir
    from melodex.evaluate.report import build_results, markdown_report, write_results
    from melodex.evaluate.tasks import run_tasks
    from melodex.models import DEFAULT_MODEL, load_model

    if projection not in PROJECTIONS:
        raise bad_value("projection", projection, "umap or pca")
    names = list(models) or [DEFAULT_MODEL]
    command = evaluation_command(
        names, manifest, split, list(tasks or []), out_dir,
        seed=seed, projection=projection, plots=plots, conventions=conventions,
    )  # fmt: skip
    loaded = {}
    for name in names:
        key = name if name not in loaded else f"{name} #{len(loaded) + 1}"
        loaded[key] = load_model(name)
    run = run_tasks(
        loaded,
        manifest,
        split,
        list(tasks) if tasks else None,
        seed=seed,
        cache_dir=cache_dir or default_cache_dir(),
        progress=progress,
        conventions=conventions,
    )
    results = build_results(run, command=command)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = EvaluationOutput(results, out_dir / "results.json", out_dir / "report.md")
    if plots:
        try:
            from melodex.evaluate.plots import plot_joint_space, plot_tag_ap
        except ImportError as exc:
            output.warnings.append(f"no figures: {exc} (pip install matplotlib umap-learn)")
        else:
            output.figures += plot_tag_ap(results, out_dir)
            first = run.models[0]
            target = out_dir / "joint_space.png"
            how = plot_joint_space(
                first.model, run.items, first.embeddings, target, seed=seed, method=projection
            )
            results["joint_space"] = {"model": first.name, "projection": how}
            output.figures.append(target)
    write_results(results, output.results_path)
    output.report_path.write_text(markdown_report(results, figures=output.figures))
    return output
