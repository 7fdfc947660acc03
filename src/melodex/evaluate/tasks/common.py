"""What every evaluation task shares: the result type, the skip error, and small helpers.

A task has the signature ``task(model, items, *, audio_embeddings, seed, convention, **options)
-> TaskResult``: ``items`` are manifest entries of the evaluated split, ``audio_embeddings`` the
split's tracks embedded by :func:`melodex.evaluate.embed.embed_items` (items that failed to embed
are left out). Scores are dot products of L2-normalised joint vectors (cosine similarity). Every
headline metric carries a percentile-bootstrap 95% interval over the task's queries, as
``<metric>_ci_low`` / ``<metric>_ci_high``, seeded by ``seed``; ``details["convention"]`` records
the metric convention used (:mod:`melodex.evaluate.metrics.conventions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from melodex.errors import MelodexError
from melodex.evaluate.bootstrap import bootstrap_ci
from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import (
    Convention,
    evaluate_retrieval,
    parse_convention,
    ranks_of_relevant,
)
from melodex.evaluate.metrics.retrieval import average_precision_at_k
from melodex.models import JointModel

__all__ = [
    "DEFAULT_TEMPLATES",
    "PLACEHOLDER_ARTISTS",
    "TaskResult",
    "TaskSkippedError",
    "field_value",
    "tag_groups",
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


def conv_of(convention: Convention | str | None) -> Convention:
    return parse_convention(convention)


def gallery(
    items: Sequence[Mapping[str, Any]], emb: AudioEmbeddings
) -> tuple[list[Mapping[str, Any]], np.ndarray]:
    """The split's embedded items and their vectors (rows in item order)."""
    kept = [it for it in items if str(it["id"]) in emb]
    if not kept:
        raise TaskSkippedError("no embedded track in the split")
    return kept, emb.vectors[emb.rows([str(it["id"]) for it in kept])].astype(np.float32)


def encode(model: JointModel, texts: Sequence[str]) -> np.ndarray:
    vecs = np.asarray(model.encode_text(list(texts), normalize=True), dtype=np.float32)
    return vecs.reshape(len(texts), -1)


def with_ci(name: str, values: np.ndarray, seed: int, statistic: str = "mean") -> dict[str, float]:
    """``{name, name_ci_low, name_ci_high}`` from finite per-query values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise TaskSkippedError(f"{name}: no finite per-query value")
    point, low, high = bootstrap_ci(v, seed=seed, statistic=statistic)  # type: ignore[arg-type]
    return {name: point, f"{name}_ci_low": low, f"{name}_ci_high": high}


def retrieval(
    scores: np.ndarray,
    rel: np.ndarray,
    seed: int,
    conv: Convention,
    *,
    ndcg_k: int = 10,
    clusters: Sequence[Any] | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """`evaluate_retrieval` under ``conv`` (empty queries as it says), plus per-query best
    rank (in the convention's base) and AP@10."""
    if not rel.any():
        raise TaskSkippedError("no query has a relevant item")
    metrics = evaluate_retrieval(scores, rel, ndcg_k=ndcg_k, seed=seed, convention=conv,
                                 empty_queries=None, clusters=clusters)  # fmt: skip
    ranks = ranks_of_relevant(scores, rel, empty_queries="exclude", ties=conv.ties)[:, 0]
    ranks = ranks.astype(np.float64) - (1 - conv.rank_base)
    ranks[~rel.any(axis=1)] = np.nan
    ap = average_precision_at_k(scores, rel, 10, empty_queries=None, convention=conv)
    return metrics, {"rank": ranks, "AP@10": ap}


def texts_of(item: Mapping[str, Any], kind: str) -> list[str]:
    return [t["text"] for t in item.get("texts", []) if t.get("kind") == kind and t.get("text")]


def tag_groups(
    items: Sequence[Mapping[str, Any]],
    *,
    merge: bool = True,
    synonyms: Mapping[str, str] | None = None,
) -> list[set[str]]:
    """Each item's tags as merged group names (:func:`melodex.text.merge_synonyms`: spellings
    with the same normalised key, named by the most common one); raw lower-case if not merge."""
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


def label(value: Any) -> str | None:
    """A single class label from a field value (a one-element list counts), else None."""
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def pair_correct(first: np.ndarray, second: np.ndarray, conv: Convention) -> np.ndarray:
    """1 where ``first > second``, 0 where below; a tie 1/2 or 0 (``conv.pair_ties``)."""
    tie = 0.5 if conv.pair_ties == "half" else 0.0
    return (first > second) + tie * (first == second)


def track_key(item: Mapping[str, Any]) -> str:
    """The dataset's own track id: ``extra.track_id``, else the id after its ``dataset:``."""
    value = (item.get("extra") or {}).get("track_id")
    return str(value) if value not in (None, "") else str(item["id"]).split(":", 1)[-1]
