"""Description mining: train the WikiMuTe-style miners and run them over documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from melodex.cli.app import mine_app
from melodex.cli.common import JsonOption, errors, out, print_json, progress_bar, shown


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
    from melodex.mining.sources import weak_training_texts
    from melodex.mining.spans import (
        load_packaged_annotations,
        read_annotations,
        split_annotations,
    )

    with errors():
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
        texts = weak_training_texts(weak_text) if weak else []
        with progress_bar("training", unit="steps") as update:
            report = train_miner(anns, config, held_out=held_out, weak_texts=texts, progress=update)
        report.extractor.save(out_dir)
        baseline = trivial_baseline(split_annotations(anns, held_out=held_out)[1], task)
    levels = ("token", "span_exact", "span_overlap")
    if as_json:
        print_json(
            {
                "task": task,
                "model": str(out_dir),
                "train": report.n_train,
                "held_out": report.n_held_out,
                "weak": report.n_weak,
                "seconds": round(report.seconds, 1),
                "metrics": {k: report.metrics[k] for k in levels if k in report.metrics},
                "baseline_all_positive": baseline,
            }
        )
        return
    out.print(
        f"{task}: trained on {report.n_train} paragraphs (+{report.n_weak} weak), "
        f"held out {report.n_held_out}, {report.seconds:.0f} s",
        highlight=False,
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
    out.print(f"model: {shown(out_dir)}")


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

    with errors():
        records = mine_records(input_folder)
        miners = [SpanExtractor.load(m) for m in models]
        mined = mine_manifest_records(records, miners, threshold=threshold)
        kept = [r for r in mined if r["texts"] or keep_empty]
        write_manifest(out_path, kept)
    n_texts = sum(len(r["texts"]) for r in kept)
    out.print(
        f"{len(records)} audio reference(s); {n_texts} mined text(s) for {len(kept)} of them: "
        f"{shown(out_path)}"
    )
