"""Evaluation results as ``results.json`` and Markdown; side-by-side comparison of result files.

``results.json`` layout (``format`` 1; keys are stable)::

    {
      "format": 1,
      "melodex_version": "0.1.0",
      "command": "melodex evaluate --model melodex-base --manifest m.jsonl ...",
      "created": "2025-01-01T12:00:00+00:00",
      "manifest": {"path": "/abs/m.jsonl", "sha256": "...", "n_items": 120},
      "split": "test", "seed": 0, "n_items": 12, "n_seen_items": 96,
      "conventions": null,   (or the convention forced on every task, as below)
      "tasks": [{"name": "tag", "options": {"top_n": 50}, "description": "...",
                 "convention": "melodex"}],
      "models": {
        "melodex-base": {
          "identity": "melodex-base@1a2b...", "n_embedded": 12, "cache_hits": 0,
          "failures": [{"id": "...", "reason": "..."}],
          "skipped": {"artist": "no artist has two tracks in the split"},
          "tasks": {"tag": {"name": "tag", "metrics": {"mAP": 0.41, "mAP_ci_low": 0.38, ...},
                            "per_query": {"AP": [...]},
                            "details": {"queries": [...], "convention": {"name": "melodex",
                                        "rank_base": 1, "median": "plain", ...}, ...}}}
        }
      }
    }

Metric values are fractions (ranks are ranks); non-finite values are ``null``. In the tables a
metric with an interval is printed ``0.412 [0.38, 0.44]`` (95% percentile bootstrap over queries).
Every task states the metric convention it was computed under
(:mod:`melodex.evaluate.metrics.conventions`): the report prints it under the task's table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError
from melodex.evaluate.tasks import EvaluationRun

__all__ = [
    "FORMAT",
    "build_results",
    "compare",
    "convention_line",
    "format_metric",
    "load_results",
    "markdown_report",
    "metric_tables",
    "task_conventions",
    "write_results",
]

FORMAT = 1
_COUNTS = ("n_queries", "n_tags", "n_triplets", "n_items")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_results(run: EvaluationRun, *, command: str) -> dict[str, Any]:
    """The JSON-serialisable record of an evaluation (see the module docstring)."""
    from melodex._version import __version__

    manifest: dict[str, Any] = {"path": None, "sha256": None}
    if run.manifest is not None:
        manifest = {"path": str(run.manifest), "sha256": _sha256(run.manifest)}
    models: dict[str, Any] = {}
    for m in run.models:
        key, n = m.name, 2
        while key in models:  # the same model given twice keeps both entries
            key, n = f"{m.name} #{n}", n + 1
        models[key] = {
            "identity": m.embeddings.model_identity,
            "n_embedded": len(m.embeddings),
            "cache_hits": m.embeddings.cache_hits,
            "failures": [{"id": i, "reason": r} for i, r in m.embeddings.failures],
            "skipped": dict(m.skipped),
            "tasks": {name: r.to_json() for name, r in m.results.items()},
        }
    return {
        "format": FORMAT,
        "melodex_version": __version__,
        "command": command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest": manifest,
        "split": run.split,
        "seed": run.seed,
        "n_items": len(run.items),
        "n_seen_items": len(run.seen_items),
        "conventions": run.conventions.describe() if run.conventions is not None else None,
        "tasks": [
            {
                "name": s.name,
                "options": json.loads(json.dumps(dict(s.options), default=str)),
                "description": s.description,
                "convention": run.conventions.name if run.conventions else s.convention,
            }
            for s in run.tasks
        ],  # fmt: skip
        "models": models,
    }


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write ``results`` as JSON atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json``; `MelodexError` names the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MelodexError(f"{path}: cannot read evaluation results: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or "models" not in data:
        raise MelodexError(f"{path}: not a melodex results.json (format {FORMAT})")
    return data


# ----------------------------------------------------------------------------- tables


def format_metric(metrics: dict[str, Any], key: str) -> str:
    """``"0.412 [0.38, 0.44]"`` (ranks: ``"3.0 [2.0, 5.0]"``); ``"-"`` when absent."""
    value = metrics.get(key)
    if value is None:
        return "-"
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and key in _COUNTS
    ):
        return str(int(value))
    rank = "rank" in key
    text = f"{value:.1f}" if rank else f"{value:.3f}"
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is not None and high is not None:
        text += f" [{low:.1f}, {high:.1f}]" if rank else f" [{low:.2f}, {high:.2f}]"
    return text


def _metric_keys(metrics: dict[str, Any]) -> list[str]:
    return [k for k in metrics if f"{k}_ci_low" in metrics]


def _count_key(metrics: dict[str, Any]) -> str | None:
    return next((k for k in _COUNTS if k in metrics), None)


def metric_tables(
    runs: Sequence[tuple[str, dict[str, Any]]],
) -> list[tuple[str, list[str], list[list[str]]]]:
    """``(task, header, rows)`` per task; ``runs`` are ``(row label, model entry)`` pairs.

    Columns are the task's metrics with intervals (first model's order, then any new ones) and
    its query count; a model that skipped the task shows the reason.
    """
    order: list[str] = []
    for _, entry in runs:
        for task in [*entry.get("tasks", {}), *entry.get("skipped", {})]:
            if task not in order:
                order.append(task)
    tables = []
    for task in order:
        keys: list[str] = []
        count = None
        for _, entry in runs:
            metrics = entry.get("tasks", {}).get(task, {}).get("metrics", {})
            keys += [k for k in _metric_keys(metrics) if k not in keys]
            count = count or _count_key(metrics)
        header = ["model", *keys, *([count] if count else [])]
        if len(header) == 1:  # every model skipped the task
            header.append("status")
        rows = []
        for label, entry in runs:
            result = entry.get("tasks", {}).get(task)
            if result is None:
                why = entry.get("skipped", {}).get(task, "not run")
                rows.append([label, f"skipped: {why}", *[""] * (len(header) - 2)])
                continue
            m = result["metrics"]
            counted = [format_metric(m, count)] if count else []
            rows.append([label, *[format_metric(m, k) for k in keys], *counted])
        tables.append((task, header, rows))
    return tables


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def convention_line(convention: dict[str, Any] | None) -> str:
    """``"ttmr-pp: rank_base=0, median=plain, ..."`` from a result's ``details.convention``."""
    if not convention:
        return "convention not recorded (results written before melodex recorded it)"
    rest = ", ".join(f"{k}={v}" for k, v in convention.items() if k != "name")
    return f"{convention.get('name', '?')}: {rest}"


def task_conventions(runs: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, list[str]]:
    """Per task, the distinct convention lines its results were computed under."""
    out: dict[str, list[str]] = {}
    for _, entry in runs:
        for task, result in entry.get("tasks", {}).items():
            line = convention_line(result.get("details", {}).get("convention"))
            if line not in out.setdefault(task, []):
                out[task].append(line)
    return out


def _task_descriptions(results: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t.get("description", "") for t in results.get("tasks", [])}


def markdown_report(results: dict[str, Any], *, figures: Sequence[str | Path] = ()) -> str:
    """The report: provenance, one table per task (rows = models), failures, then figures."""
    man = results.get("manifest", {})
    lines = [
        "# melodex evaluation",
        "",
        f"- command: `{results.get('command', '')}`",
        f"- manifest: `{man.get('path')}` (sha256 `{(man.get('sha256') or '')[:16]}`)",
        f"- split: {results.get('split')} ({results.get('n_items')} items), "
        f"seed: {results.get('seed')}, melodex {results.get('melodex_version')}",
        f"- created: {results.get('created')}",
        "",
        "Values are fractions with 95% bootstrap intervals over queries, `value [low, high]`; "
        "ranks are lower-is-better, 1- or 0-based as each task's convention says.",
        "",
    ]
    for name, entry in results["models"].items():
        lines.append(f"- **{name}**: `{entry.get('identity')}`, {entry.get('n_embedded')} "
                     f"tracks embedded, {len(entry.get('failures', []))} failed")  # fmt: skip
    descriptions = _task_descriptions(results)
    runs = list(results["models"].items())
    conventions = task_conventions(runs)
    for task, header, rows in metric_tables(runs):
        lines += ["", f"## {task}", ""]
        if descriptions.get(task):
            lines += [descriptions[task], ""]
        lines.append(_markdown_table(header, rows))
        lines += ["", *(f"Convention: {c}" for c in conventions.get(task, []))]
    failures = [
        (name, f) for name, entry in results["models"].items() for f in entry.get("failures", [])
    ]
    if failures:
        lines += ["", "## Failed tracks", ""]
        lines += [f"- {name}: `{f['id']}`: {f['reason']}" for name, f in failures]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    return "\n".join(lines) + "\n"


def compare(result_files: Sequence[str | Path]) -> str:
    """Markdown: per task, one row per (file, model) of the given ``results.json`` files.

    Files evaluated on different manifests, splits or seeds are compared anyway, with a warning
    line, since the numbers then do not measure the same thing.
    """
    if not result_files:
        raise MelodexError("compare: give at least one results.json")
    loaded = [(Path(f), load_results(f)) for f in result_files]
    runs: list[tuple[str, dict[str, Any]]] = []
    for i, (path, res) in enumerate(loaded, start=1):
        for name, entry in res["models"].items():
            runs.append((f"{name} ({i}: {path.parent.name or path.name})", entry))
    lines = ["# melodex comparison", ""]
    for i, (path, res) in enumerate(loaded, start=1):
        lines.append(
            f"{i}. `{path}`: split {res.get('split')}, seed {res.get('seed')}, manifest sha256 "
            f"`{(res.get('manifest', {}).get('sha256') or '')[:16]}`"
        )
    setups = {
        (r.get("manifest", {}).get("sha256"), r.get("split"), r.get("seed")) for _, r in loaded
    }
    if len(setups) > 1:
        lines += ["", "**Warning:** the files differ in manifest, split or seed."]
    conventions = task_conventions(runs)
    for task, header, rows in metric_tables(runs):
        lines += ["", f"## {task}", "", _markdown_table(header, rows), ""]
        found = conventions.get(task, [])
        lines += [f"Convention: {c}" for c in found]
        if len(found) > 1:
            lines.append("**Warning:** these rows were computed under different conventions.")
    return "\n".join(lines) + "\n"
