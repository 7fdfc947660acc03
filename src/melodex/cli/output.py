"""Tables and lines the commands print (JSON goes through :func:`common.print_json`)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from melodex.cli.common import out, print_json, shown


def print_hits(hits: list[Any], as_json: bool) -> None:
    """Search hits as a table, or as the JSON contract's list."""
    if as_json:
        print_json([h.to_json() for h in hits])
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "score", "title", "artist", "album", "at", "path"):
        table.add_column(col, overflow="fold")
    for h in hits:
        at = f"{h.segment_start:.0f}s" if h.segment_start is not None else ""
        cells = (h.title or "", h.artist or "", h.album or "", at, h.path)
        table.add_row(str(h.rank), f"{h.score:.3f}", *(shown(c) for c in cells))
    out.print(table)


def print_metric_tables(runs: list[tuple[str, dict[str, Any]]]) -> None:
    """Evaluation results, one table per task (models as rows)."""
    from melodex.evaluate.report import metric_tables, task_conventions

    conventions = task_conventions(runs)
    for task, header, rows in metric_tables(runs):
        caption = "; ".join(f"convention {c}" for c in conventions.get(task, []))
        table = Table(
            title=task, caption=shown(caption) or None, show_header=True, header_style="bold",
            title_justify="left", caption_justify="left",
        )  # fmt: skip
        for col in header:
            table.add_column(col, overflow="fold")
        for row in rows:  # the interval goes on a second line, so tables fit a terminal
            table.add_row(*(cell.replace(" [", "\n[", 1) for cell in row))
        out.print(table)
