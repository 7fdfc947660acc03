"""The Typer application and its command groups (the command modules register onto them)."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search music by text, offline.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: the demo corpus, word vectors.")
mine_app = typer.Typer(
    no_args_is_help=True,
    help="Mine music descriptions from text (WikiMuTe sentence/aspect models).",
)
app.add_typer(data_app, name="data")
app.add_typer(mine_app, name="mine")
