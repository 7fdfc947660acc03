"""What every command shares: consoles, options, the error door, progress bars, safe text."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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

from melodex.cli.terminal import SafeConsole, escape_controls
from melodex.errors import MelodexError
from melodex.progress import ProgressFn

if TYPE_CHECKING:
    from melodex.library.library import Library

out = SafeConsole()
err = SafeConsole(stderr=True)

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
    typer.Option(
        "--model",
        help="Model: a built-in name, a folder, or family:argument (default: the one the "
        "library was indexed with, else melodex-base; `melodex models` lists them).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys, see README).")]
KOption = Annotated[int, typer.Option("-k", min=1, help="How many results.")]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "-o", "--set", help="Override a config field, e.g. -o optim.epochs=3 (repeatable)."
    ),
]


@contextmanager
def errors() -> Iterator[None]:
    """Turn melodex errors into one red line and exit code 1 (no traceback for users)."""
    try:
        yield
    except MelodexError as exc:
        err.print(f"[red]error:[/red] {shown(exc, lines=True)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def shown(text: object, *, lines: bool = False) -> str:
    """Text (paths, reasons) safe to print with rich: its markup escaped, so a file named
    ``[live].mp3`` shows as itself, non-UTF-8 file-name bytes shown as ``\\xNN``, and control
    and escape characters (``\\x1b``, newlines) shown as escapes, never sent to the terminal."""
    try:
        raw = str(text).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name produced
        raw = str(text).encode("utf-8", "backslashreplace")
    return escape(escape_controls(raw.decode("utf-8", "backslashreplace"), keep_newlines=lines))


# Characters json.dumps leaves raw with ensure_ascii=False that a terminal acts on (DEL, C1 such
# as the one-byte CSI \x9b, bidi overrides): written as \uXXXX, which parses back the same.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def json_text(data: Any) -> str:
    """JSON that any terminal encoding can print: non-UTF-8 file-name bytes (lone surrogates
    in Python strings) become ``\\udcXX`` escapes, which ``json.loads`` turns back into them."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def print_json(data: Any) -> None:
    """The one way the CLI prints JSON (``--json``): to stdout, exact, always printable."""
    print(json_text(data))


def print_event(kind: str, facts: dict[str, Any]) -> None:
    """One event of a long job as a JSON line on stderr, flushed at once (``--events``)."""
    sys.stderr.write(json.dumps({"event": kind, **facts}, ensure_ascii=True) + "\n")
    sys.stderr.flush()


def library(db: str | Path | None, model: str | None) -> Library:
    from melodex.library.library import Library

    return Library(db, model=model)


@contextmanager
def progress_bar(
    label: str, *, unit: str = "items", committed: dict[str, int] | None = None
) -> Iterator[ProgressFn]:
    """A progress bar on stderr with rate and ETA; yields a ``progress(done, total, note)``.

    ``committed`` (``{"rows": n}``, kept current by the caller) is shown beside the count: the
    bar counts files handled, which run ahead of what is written to the store."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if committed is not None:
        columns.insert(3, TextColumn("{task.fields[committed]}"))
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(label, total=None, rate="", committed="")

        def update(done: int, total: int, _note: str) -> None:
            speed = bar.tasks[task].speed
            bar.update(
                task,
                completed=done,
                total=total,
                rate=f"{speed:.1f} {unit}/s" if speed else "",
                committed=f"({committed['rows']} written)" if committed is not None else "",
            )

        yield update
