"""Run tasks over models: embed the split once per model, run every task, record what ran and
under which convention, and why a task did not run."""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError
from melodex.evaluate.embed import AudioEmbeddings, embed_items
from melodex.evaluate.metrics import Convention, parse_convention
from melodex.evaluate.tasks.common import TaskResult, TaskSkippedError
from melodex.evaluate.tasks.registry import DEFAULT_TASKS, TaskSpec, parse_task
from melodex.models import JointModel
from melodex.progress import ProgressFn

__all__ = ["EvaluationRun", "ModelRun", "run_tasks"]


@dataclass
class ModelRun:
    """One model's embeddings and task results; ``skipped`` maps task -> why it did not run."""

    name: str
    model: JointModel
    embeddings: AudioEmbeddings
    results: dict[str, TaskResult]
    skipped: dict[str, str]


@dataclass
class EvaluationRun:
    """One evaluation: the split, the tasks and each model's results. ``conventions`` is the
    convention forced on every task (None: each task's own default, recorded per result)."""

    manifest: Path | None
    split: str
    seed: int
    tasks: list[TaskSpec]
    items: list[dict[str, Any]]
    seen_items: list[dict[str, Any]]
    models: list[ModelRun]
    conventions: Convention | None = None


def run_tasks(
    models: Mapping[str, JointModel] | Sequence[JointModel],
    manifest: str | Path | Sequence[Mapping[str, Any]],
    split: str = "test",
    tasks: Sequence[str | TaskSpec] | None = None,
    *,
    seed: int = 0,
    root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    conventions: Convention | str | None = None,
) -> EvaluationRun:
    """Embed a split with every model and run the tasks on it.

    ``manifest`` is a JSONL path (audio relative to its folder) or a list of entries with
    ``root``; ``split`` one of train/valid/test or ``all``. ``tasks`` are names or
    :func:`parse_task` specs (default: :data:`DEFAULT_TASKS`, the tasks that need no extra
    file). ``conventions`` (a preset name, ``"name:key=value,..."`` or a `Convention`) is used
    by every task; None lets each task use its default (the paper's for a paper's protocol). When the split is valid or
    test, the train split is the ``seen_items`` of the unseen-query task. A task the split
    cannot support is recorded in ``ModelRun.skipped`` instead of failing the run.
    ``progress(done, total, note)`` reports embedding progress per model (note: the stage).
    """
    from melodex.data.manifest import read_manifest

    if isinstance(manifest, str | Path):
        path: Path | None = Path(manifest)
        every = read_manifest(path, check_audio=False)
        root = path.parent if root is None else root
    else:
        path, every = None, [dict(it) for it in manifest]
        if root is None:
            raise MelodexError("run_tasks: pass root= with a list of manifest entries")
    if split == "all":
        items, seen = every, []
    else:
        items = [it for it in every if it.get("split") == split]
        seen = [it for it in every if it.get("split") == "train"] if split != "train" else []
    if not items:
        splits = dict(Counter(str(it.get("split")) for it in every))
        raise MelodexError(f"split {split!r} of the manifest is empty (splits: {splits})")
    forced = parse_convention(conventions) if conventions is not None else None
    specs = [parse_task(t) if isinstance(t, str) else t for t in (tasks or list(DEFAULT_TASKS))]
    named = models.items() if isinstance(models, Mapping) else [(m.config.name, m) for m in models]
    runs: list[ModelRun] = []
    for name, model in named:
        report: ProgressFn | None = None
        if progress is not None:
            report = lambda d, t, _p, _n=name: progress(d, t, f"embedding {_n}")  # noqa: E731
        emb = embed_items(model, items, root=root, cache_dir=cache_dir, progress=report)
        results: dict[str, TaskResult] = {}
        skipped: dict[str, str] = {}
        for spec in specs:
            options = dict(spec.options)
            params = inspect.signature(spec.fn).parameters
            if "seen_items" in params and "seen_items" not in options:
                options["seen_items"] = seen
            if "convention" in params and "convention" not in options:
                options["convention"] = forced or parse_convention(spec.convention)
            try:
                result = spec.fn(model, items, audio_embeddings=emb, seed=seed, **options)
            except (TaskSkippedError, ValueError) as exc:  # MetricInputError is a ValueError
                skipped[spec.name] = str(exc)
                continue
            result.name = spec.name
            result.details.setdefault("options", _jsonable(spec.options))
            results[spec.name] = result
        runs.append(ModelRun(name, model, emb, results, skipped))
    return EvaluationRun(path, split, seed, specs, items, seen, runs, forced)


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(options), default=str))
