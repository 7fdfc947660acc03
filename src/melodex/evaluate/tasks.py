"""Evaluation tasks of the seed papers, each a function over a model and embedded manifest items.

Every task has the signature ``task(model, items, *, audio_embeddings, seed, **options) ->
TaskResult``: ``items`` are manifest entries of the evaluated split, ``audio_embeddings`` the
split's tracks embedded by :func:`melodex.evaluate.embed.embed_items` (items that failed to embed
are left out). Scores are dot products of L2-normalised joint vectors (cosine similarity). Metric
values come from :mod:`melodex.evaluate.metrics` (1-based ranks, pessimistic ties); every headline
metric carries a percentile-bootstrap 95% interval over the task's queries, as
``<metric>_ci_low`` / ``<metric>_ci_high``, seeded by ``seed``.

Conventions
-----------
caption (text -> track, TTMR / WikiMuTe / TTMR++ caption retrieval)
    The gallery is the split's unique tracks. Every distinct text of the kind (default
    ``caption``) is one query; its relevant items are the tracks carrying exactly that text
    (normally one, so R@k is 1-of-N recall). A track with three captions gives three queries.
track2text (track -> text; MARD album retrieval from reviews, in reverse)
    Each track queries the split's distinct texts of a kind; relevant = the track's own texts.
tag / tag-all (tag-query retrieval, TTMR and tag-based metric learning)
    Raw tags are merged into groups by :func:`melodex.text.merge_synonyms` (spellings with the
    same :func:`melodex.text.normalize_tag` key, e.g. "Rock Music", "rock songs" -> "rock"; the
    group is named by its most common spelling, which is also the query text). A tag is a query
    when it has ``>= min_positives`` positive tracks and at least one negative; ``tag`` keeps the
    ``top_n=50`` most frequent (ties by name), ``tag-all`` every one. Reported: mAP (untruncated
    AP, mean over tags), ROC-AUC and PR-AUC, macro over tags.
zeroshot (zero-shot classification, WikiMuTe / TTMR)
    Classes are the values of a manifest field (dotted path, default ``extra.genre``) or the
    members of a tag group (an item belongs when it has exactly one member). A class vector is
    the mean of its prompt embeddings over templates (default ``"{label}"``, ``"a {label}
    song"``, ``"music in the style of {label}"``), L2-normalised, as in CLIP prompt
    ensembling. Top-1 and top-5 accuracy (top-5 only with more than five classes).
triplets (track similarity, TTMR++ track-based triplets; tag-based metric learning sampling)
    ``n_triplets`` triplets drawn with ``numpy.random.default_rng(seed)``: a label uniformly
    among labels with >= 2 positives and >= 1 negative ("balanced" sampling), then an anchor and
    a distinct positive among its tracks, and a negative among the tracks without it. Labels are
    the merged tags, or the value of ``field``. Accuracy = P(sim(a, p) > sim(a, n)), ties 1/2.
artist (artist retrieval, TTMR++ nDCG@200)
    Each track with a known artist queries every *other* track (its own column is removed);
    relevant = same artist (case-insensitive). Placeholders (``traditional``, ``anonymous``,
    ``unknown``, ``various artists``) are not artists: such tracks stay in the gallery as
    non-relevant and ask no query. Queries without another track by the artist are excluded.
unseen (unseen-query retrieval, TTMR)
    Queries are combinations of ``size`` merged tags that co-occur on a split track but on no
    track of the ``seen_items`` (the train split when evaluating valid or test), so the model
    met none of them as a whole; up to ``n_queries`` are drawn with the seed. Query text
    "a, b and c"; relevant = tracks carrying every tag of the combination. Combinations true of
    every track are dropped (nothing to rank).
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError
from melodex.evaluate.embed import AudioEmbeddings, embed_items
from melodex.evaluate.metrics import (
    average_precision_at_k,
    bootstrap_ci,
    evaluate_retrieval,
    pr_auc,
    ranks_of_relevant,
    roc_auc,
    top_k_accuracy,
    triplet_accuracy,
)
from melodex.models import JointModel
from melodex.progress import ProgressFn

__all__ = [
    "DEFAULT_TEMPLATES",
    "PLACEHOLDER_ARTISTS",
    "TASKS",
    "EvaluationRun",
    "ModelRun",
    "TaskResult",
    "TaskSkippedError",
    "TaskSpec",
    "artist_retrieval",
    "caption_retrieval",
    "parse_task",
    "run_tasks",
    "tag_retrieval",
    "track_similarity_triplets",
    "track_to_text_retrieval",
    "unseen_query_retrieval",
    "zero_shot_classification",
]

DEFAULT_TEMPLATES = ("{label}", "a {label} song", "music in the style of {label}")
PLACEHOLDER_ARTISTS = ("", "traditional", "anonymous", "unknown", "various artists", "various")


class TaskSkippedError(MelodexError):
    """The split cannot support a task (e.g. fewer than two classes); the message says why."""


@dataclass
class TaskResult:
    """One task's outcome for one model.

    ``metrics``: named values, each headline metric followed by ``_ci_low`` / ``_ci_high``,
    then counts. ``per_query``: arrays of per-query values (``details["queries"]`` names the
    queries where that makes sense). ``details``: conventions and counts, JSON-serialisable.
    """

    name: str
    metrics: dict[str, float]
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if v is None or not np.isfinite(v) else float(v)

        return {
            "name": self.name,
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "per_query": {
                k: [clean(x) for x in np.asarray(v, dtype=np.float64).ravel()]
                for k, v in self.per_query.items()
            },
            "details": self.details,
        }


# ----------------------------------------------------------------------------- helpers


def _gallery(
    items: Sequence[Mapping[str, Any]], emb: AudioEmbeddings
) -> tuple[list[Mapping[str, Any]], np.ndarray]:
    kept = [it for it in items if str(it["id"]) in emb]
    if not kept:
        raise TaskSkippedError("no embedded track in the split")
    return kept, emb.vectors[emb.rows([str(it["id"]) for it in kept])].astype(np.float32)


def _encode(model: JointModel, texts: Sequence[str]) -> np.ndarray:
    vecs = np.asarray(model.encode_text(list(texts), normalize=True), dtype=np.float32)
    return vecs.reshape(len(texts), -1)


def _with_ci(name: str, values: np.ndarray, seed: int, statistic: str = "mean") -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise TaskSkippedError(f"{name}: no finite per-query value")
    point, low, high = bootstrap_ci(v, seed=seed, statistic=statistic)  # type: ignore[arg-type]
    return {name: point, f"{name}_ci_low": low, f"{name}_ci_high": high}


def _retrieval(
    scores: np.ndarray, rel: np.ndarray, seed: int, *, ndcg_k: int = 10
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    if not rel.any():
        raise TaskSkippedError("no query has a relevant item")
    metrics = evaluate_retrieval(scores, rel, ndcg_k=ndcg_k, seed=seed, empty_queries="exclude")
    ranks = ranks_of_relevant(scores, rel, empty_queries="exclude")[:, 0].astype(np.float64)
    ranks[~rel.any(axis=1)] = np.nan
    ap = average_precision_at_k(scores, rel, 10, empty_queries="exclude")
    return metrics, {"rank": ranks, "AP@10": ap}


def _texts_of(item: Mapping[str, Any], kind: str) -> list[str]:
    return [t["text"] for t in item.get("texts", []) if t.get("kind") == kind and t.get("text")]


def tag_groups(
    items: Sequence[Mapping[str, Any]],
    *,
    merge: bool = True,
    synonyms: Mapping[str, str] | None = None,
) -> list[set[str]]:
    """Each item's tags as merged group names (see module docstring); raw lower-case if not merge."""
    from melodex.text import merge_synonyms

    raw = [str(t) for it in items for t in it.get("tags", [])]
    names = merge_synonyms(raw, synonyms) if merge else {t: t.strip().lower() for t in raw}
    return [{names[str(t)] for t in it.get("tags", [])} for it in items]


def field_value(item: Mapping[str, Any], path: str) -> Any:
    """``field_value(item, "extra.genre")``: a dotted path into a manifest entry, None if absent."""
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _label(value: Any) -> str | None:
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


# ----------------------------------------------------------------------------- tasks


def caption_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    kind: str = "caption",
    seed: int = 0,
) -> TaskResult:
    """Text -> track: each distinct text of ``kind`` finds its track among the split's tracks."""
    gallery, vectors = _gallery(items, audio_embeddings)
    owners: dict[str, set[int]] = {}
    for j, it in enumerate(gallery):
        for text in _texts_of(it, kind):
            owners.setdefault(text, set()).add(j)
    if not owners:
        raise TaskSkippedError(f"no text of kind {kind!r} in the split")
    queries = list(owners)
    rel = np.zeros((len(queries), len(gallery)), dtype=bool)
    for q, text in enumerate(queries):
        rel[q, sorted(owners[text])] = True
    scores = _encode(model, queries) @ vectors.T
    metrics, per_query = _retrieval(scores, rel, seed)
    return TaskResult(
        "caption" if kind == "caption" else f"{kind}->track",
        metrics,
        per_query,
        {"kind": kind, "queries": queries, "n_tracks": len(gallery), "direction": "text->track"},
    )


def track_to_text_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    kind: str = "caption",
    seed: int = 0,
) -> TaskResult:
    """Track -> text: each track ranks the split's distinct texts of ``kind``; its own are relevant."""
    gallery, vectors = _gallery(items, audio_embeddings)
    texts: dict[str, int] = {}
    for it in gallery:
        for text in _texts_of(it, kind):
            texts.setdefault(text, len(texts))
    if not texts:
        raise TaskSkippedError(f"no text of kind {kind!r} in the split")
    rel = np.zeros((len(gallery), len(texts)), dtype=bool)
    for q, it in enumerate(gallery):
        rel[q, [texts[t] for t in _texts_of(it, kind)]] = True
    scores = vectors @ _encode(model, list(texts)).T
    metrics, per_query = _retrieval(scores, rel, seed)
    return TaskResult(
        "track2text",
        metrics,
        per_query,
        {"kind": kind, "queries": [str(it["id"]) for it in gallery], "n_texts": len(texts)},
    )


def tag_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    top_n: int | None = 50,
    min_positives: int = 1,
    merge_synonyms: bool = True,
    synonyms: Mapping[str, str] | None = None,
    seed: int = 0,
) -> TaskResult:
    """Tag query -> tracks: mAP, ROC-AUC and PR-AUC macro over the tag vocabulary."""
    gallery, vectors = _gallery(items, audio_embeddings)
    labels = tag_groups(gallery, merge=merge_synonyms, synonyms=synonyms)
    counts = Counter(t for s in labels for t in s)
    n = len(gallery)
    vocab = sorted(
        (t for t, c in counts.items() if c >= min_positives and c < n),
        key=lambda t: (-counts[t], t),
    )
    if top_n is not None:
        vocab = vocab[:top_n]
    if not vocab:
        raise TaskSkippedError(
            f"no tag with >= {min_positives} positive(s) and a negative among {n} tracks"
        )
    rel = np.array([[t in s for s in labels] for t in vocab], dtype=bool)  # (T, N)
    scores = _encode(model, vocab) @ vectors.T
    ap = average_precision_at_k(scores, rel, None)
    roc = np.asarray(roc_auc(scores.T, rel.T, average="macro", per_group=True))
    pr = np.asarray(pr_auc(scores.T, rel.T, average="macro", per_group=True))
    metrics = {
        **_with_ci("mAP", ap, seed),
        **_with_ci("ROC-AUC", roc, seed),
        **_with_ci("PR-AUC", pr, seed),
        "n_tags": len(vocab),
        "n_items": n,
    }
    return TaskResult(
        "tag" if top_n is not None else "tag-all",
        metrics,
        {"AP": ap, "ROC-AUC": roc, "PR-AUC": pr},
        {
            "queries": vocab,
            "positives": [counts[t] for t in vocab],
            "top_n": top_n,
            "min_positives": min_positives,
            "merge_synonyms": merge_synonyms,
        },
    )


def zero_shot_classification(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    field: str = "extra.genre",
    tag_group: Sequence[str] | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    seed: int = 0,
) -> TaskResult:
    """Classify tracks by similarity to prompt-ensembled class vectors; top-1 / top-5 accuracy."""
    gallery, vectors = _gallery(items, audio_embeddings)
    if not templates or any("{label}" not in t for t in templates):
        raise TaskSkippedError(f"every template must contain '{{label}}', got {list(templates)}")
    if tag_group is not None:
        group = {t.strip().lower() for t in tag_group}
        tags = tag_groups(gallery, merge=False)
        found = [sorted(s & group) for s in tags]
        labels = [f[0] if len(f) == 1 else None for f in found]
        source = f"tags {sorted(group)}"
    else:
        labels = [_label(field_value(it, field)) for it in gallery]
        source = field
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    classes = sorted({labels[i] for i in keep})  # type: ignore[type-var]
    if len(classes) < 2:
        raise TaskSkippedError(f"zero-shot needs >= 2 classes in {source}, found {classes}")
    prompts = [t.format(label=c) for c in classes for t in templates]
    emb = _encode(model, prompts).reshape(len(classes), len(templates), -1).mean(axis=1)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[labels[i]] for i in keep])
    scores = vectors[keep] @ emb.T
    top1 = np.asarray(top_k_accuracy(scores, y, 1, per_item=True))
    metrics = _with_ci("top1", top1, seed)
    per_query = {"top1": top1}
    if len(classes) > 5:
        top5 = np.asarray(top_k_accuracy(scores, y, 5, per_item=True))
        metrics.update(_with_ci("top5", top5, seed))
        per_query["top5"] = top5
    metrics.update(n_items=len(keep), n_classes=len(classes), n_unlabelled=len(gallery) - len(keep))
    per_class = {c: float(top1[y == index[c]].mean()) for c in classes}
    return TaskResult(
        "zeroshot",
        metrics,
        per_query,
        {
            "source": source,
            "classes": classes,
            "templates": list(templates),
            "per_class_top1": per_class,
            "queries": [str(gallery[i]["id"]) for i in keep],
        },
    )


def track_similarity_triplets(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    n_triplets: int = 1000,
    field: str | None = None,
    merge_synonyms: bool = True,
    seed: int = 0,
) -> TaskResult:
    """Anchor/positive share a label, the negative lacks it; accuracy of sim(a,p) > sim(a,n)."""
    gallery, vectors = _gallery(items, audio_embeddings)
    if field is None:
        labels = tag_groups(gallery, merge=merge_synonyms)
    else:
        labels = [{lab} if (lab := _label(field_value(it, field))) else set() for it in gallery]
    members: dict[str, list[int]] = {}
    for i, s in enumerate(labels):
        for t in s:
            members.setdefault(t, []).append(i)
    n = len(gallery)
    eligible = sorted(t for t, m in members.items() if len(m) >= 2 and len(m) < n)
    if not eligible:
        raise TaskSkippedError("no label with >= 2 tracks and a track without it")
    rng = np.random.default_rng(seed)
    trip = np.empty((n_triplets, 3), dtype=np.int64)
    chosen = []
    for r in range(n_triplets):
        label = eligible[int(rng.integers(len(eligible)))]
        pos = members[label]
        neg = np.setdiff1d(np.arange(n), pos)
        a, p = rng.choice(pos, size=2, replace=False)
        trip[r] = (a, p, neg[int(rng.integers(neg.size))])
        chosen.append(label)
    sims = vectors @ vectors.T
    correct = np.asarray(
        triplet_accuracy(
            sims[trip[:, 0], trip[:, 1]], sims[trip[:, 0], trip[:, 2]], per_triplet=True
        )
    )
    metrics = {
        **_with_ci("accuracy", correct, seed),
        "n_triplets": n_triplets,
        "n_labels": len(eligible),
    }
    return TaskResult(
        "triplets",
        metrics,
        {"correct": correct},
        {
            "labels": "merged tags" if field is None else field,
            "sampling": "label uniform, then anchor/positive with it, negative without it",
            "label_counts": dict(Counter(chosen).most_common()),
        },
    )


def artist_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    k: int = 200,
    placeholders: Sequence[str] = PLACEHOLDER_ARTISTS,
    seed: int = 0,
) -> TaskResult:
    """Track -> other tracks; relevant = same artist; nDCG@k (k=200 as TTMR++)."""
    gallery, vectors = _gallery(items, audio_embeddings)
    n = len(gallery)
    if n < 2:
        raise TaskSkippedError("artist retrieval needs >= 2 tracks")
    ignore = {p.strip().casefold() for p in placeholders}
    artist = [str(it.get("artist") or "").strip().casefold() for it in gallery]
    artist = [a if a not in ignore else None for a in artist]
    queries = [i for i in range(n) if artist[i] is not None]
    others = ~np.eye(n, dtype=bool)
    sims = (vectors @ vectors.T)[others].reshape(n, n - 1)
    same = np.array([[a is not None and a == b for b in artist] for a in artist])
    rel = same[others].reshape(n, n - 1)[queries]
    if not rel.any():
        raise TaskSkippedError("no artist has two tracks in the split")
    metrics, per_query = _retrieval(sims[queries], rel, seed, ndcg_k=k)
    return TaskResult(
        "artist",
        metrics,
        per_query,
        {
            "queries": [str(gallery[i]["id"]) for i in queries],
            "n_artists": len({a for a in artist if a is not None}),
            "placeholders": sorted(ignore),
        },
    )


def _compose(tags: Sequence[str], template: str) -> str:
    joined = tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " and " + tags[-1]
    return template.format(tags=joined)


def unseen_query_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    seen_items: Sequence[Mapping[str, Any]] = (),
    size: int = 2,
    n_queries: int = 100,
    template: str = "{tags}",
    seed: int = 0,
) -> TaskResult:
    """Queries from tag combinations that no seen (training) track carries; R@k, mAP, nDCG."""
    gallery, vectors = _gallery(items, audio_embeddings)
    labels = tag_groups([*gallery, *seen_items])
    here, seen = labels[: len(gallery)], labels[len(gallery) :]
    seen_combos = {c for s in seen for c in itertools.combinations(sorted(s), size)}
    combos = sorted(
        {c for s in here for c in itertools.combinations(sorted(s), size)} - seen_combos
    )
    rel_all = {c: np.array([set(c) <= s for s in here]) for c in combos}
    combos = [c for c in combos if not rel_all[c].all()]
    if not combos:
        raise TaskSkippedError(f"no held-out combination of {size} tags in the split")
    rng = np.random.default_rng(seed)
    if len(combos) > n_queries:
        combos = [combos[i] for i in sorted(rng.choice(len(combos), n_queries, replace=False))]
    queries = [_compose(c, template) for c in combos]
    rel = np.stack([rel_all[c] for c in combos])
    scores = _encode(model, queries) @ vectors.T
    metrics, per_query = _retrieval(scores, rel, seed)
    return TaskResult(
        "unseen",
        metrics,
        per_query,
        {
            "queries": queries,
            "size": size,
            "held_out_against": f"{len(seen_items)} seen item(s)",
            "guaranteed_unseen": bool(seen_items),
        },
    )


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class TaskSpec:
    """A named task: the function and the options it runs with."""

    name: str
    fn: Callable[..., TaskResult]
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def with_options(self, **options: Any) -> TaskSpec:
        return TaskSpec(self.name, self.fn, {**self.options, **options}, self.description)


TASKS: dict[str, TaskSpec] = {
    s.name: s
    for s in [
        TaskSpec("caption", caption_retrieval, {}, "caption -> track retrieval (1-of-N)"),
        TaskSpec("track2text", track_to_text_retrieval, {}, "track -> caption retrieval"),
        TaskSpec("tag", tag_retrieval, {"top_n": 50}, "tag-query retrieval, 50 most frequent tags"),
        TaskSpec("tag-all", tag_retrieval, {"top_n": None}, "tag-query retrieval, every tag"),
        TaskSpec("zeroshot", zero_shot_classification, {}, "zero-shot classification"),
        TaskSpec("triplets", track_similarity_triplets, {}, "track-similarity triplets"),
        TaskSpec("artist", artist_retrieval, {}, "artist retrieval, nDCG@200"),
        TaskSpec("unseen", unseen_query_retrieval, {}, "unseen tag-combination queries"),
    ]
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_task(spec: str) -> TaskSpec:
    """``"tag"`` or ``"zeroshot:field=extra.form,templates=["{label}","{label} music"]"``.

    Option values are JSON when they parse as JSON (numbers, null, lists), strings otherwise.
    """
    name, _, rest = spec.partition(":")
    if name not in TASKS:
        raise MelodexError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    options: dict[str, Any] = {}
    for part in filter(None, re.split(r",(?=\s*\w+\s*=)", rest)):
        key, eq, value = part.partition("=")
        if not eq:
            raise MelodexError(f"task option {part!r} in {spec!r} is not key=value")
        options[key.strip()] = _parse_value(value.strip())
    spec_ = TASKS[name].with_options(**options)
    accepted = inspect.signature(spec_.fn).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise MelodexError(f"task {name!r} has no option(s) {unknown}")
    return spec_


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
    manifest: Path | None
    split: str
    seed: int
    tasks: list[TaskSpec]
    items: list[dict[str, Any]]
    seen_items: list[dict[str, Any]]
    models: list[ModelRun]


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
) -> EvaluationRun:
    """Embed a split with every model and run the tasks on it.

    ``manifest`` is a JSONL path (audio relative to its folder) or a list of entries with
    ``root``; ``split`` one of train/valid/test or ``all``. ``tasks`` are names or
    :func:`parse_task` specs (default: every task in :data:`TASKS`). When the split is valid or
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
    specs = [parse_task(t) if isinstance(t, str) else t for t in (tasks or list(TASKS))]
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
            try:
                result = spec.fn(model, items, audio_embeddings=emb, seed=seed, **options)
            except (TaskSkippedError, ValueError) as exc:  # MetricInputError is a ValueError
                skipped[spec.name] = str(exc)
                continue
            result.name = spec.name
            result.details.setdefault("options", _jsonable(spec.options))
            results[spec.name] = result
        runs.append(ModelRun(name, model, emb, results, skipped))
    return EvaluationRun(path, split, seed, specs, items, seen, runs)


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(options), default=str))
