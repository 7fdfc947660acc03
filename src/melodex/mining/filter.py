"""Cross-modal relevance filtering (WikiMuTe, stage 3): drop (audio, text) pairs a joint model
finds unrelated.

Every scored text of a manifest item forms one pair with the item's audio. Its relevance is the
cosine similarity of the two joint vectors: the track's pooled vector (every window, as
:mod:`melodex.evaluate.embed` pools it) and the text's vector, both L2-normalised. A pair whose
score is below ``threshold`` is dropped; the default, ``0.0``, is WikiMuTe's rule ("remove pairs
with a negative similarity").

Scorers
-------
The filter asks a *scorer* for the scores, so the model can be anything:

- :func:`model_scorer` wraps a :class:`~melodex.models.JointModel` (the built-in default or any
  trained model folder, through :func:`melodex.models.load_model`); tracks are embedded with the
  evaluation cache, so a second pass over the same audio is free.
- :func:`vector_scorer` takes ready-made track vectors and a text-encoding callable. This is the
  *self-filtering* mode: a trainer passes the model being trained (its current track vectors and
  its ``encode_text``), filters its own training pairs between epochs or rounds, and retrains on
  what is left. Nothing here imports the trainer.

Outputs
-------
:func:`filter_items` returns a :class:`FilterResult`:

- ``kept``: the items with their dropped texts removed; an item that loses *every* scored text is
  removed too (``drop_emptied=True``, the default: a track without a relevant description leaves
  the dataset, as in WikiMuTe; its tags would otherwise stand in for captions in training);
- ``dropped``: for every item that lost at least one pair, a copy holding only the dropped texts;
- in both, ``extra.relevance`` is a list aligned with the item's ``texts``: the pair's score, or
  ``null`` for a text of a kind that was not scored; ``extra.relevance_model`` names the scorer.

Only texts of the scored ``kinds`` are judged (default: descriptions, see
:data:`DEFAULT_KINDS`); tag lists and metadata lines are carried through unscored, because an
audio model cannot be expected to recognise a title or an artist's name.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError
from melodex.progress import ProgressFn

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_THRESHOLD",
    "FilterResult",
    "PairScore",
    "PairScorer",
    "filter_items",
    "filter_manifest",
    "model_scorer",
    "rebase_audio",
    "vector_scorer",
]

DEFAULT_THRESHOLD = 0.0
DEFAULT_KINDS = ("caption", "review", "mined", "pseudo-caption")

#: ``scorer(items, pairs) -> scores``: ``pairs`` are ``(item index, text index)`` into ``items``;
#: the result has one cosine per pair, ``nan`` when the pair cannot be scored (audio failed).
PairScorer = Callable[[Sequence[Mapping[str, Any]], Sequence[tuple[int, int]]], np.ndarray]


@dataclass(frozen=True)
class PairScore:
    """One judged (audio, text) pair."""

    item_id: str
    text_index: int  # position in the item's original ``texts``
    kind: str
    text: str
    score: float  # nan when unscored
    kept: bool


@dataclass
class FilterResult:
    kept: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    pairs: list[PairScore]
    threshold: float
    scorer_name: str
    removed_items: list[str] = field(default_factory=list)  # ids that lost every scored text

    @property
    def counts(self) -> dict[str, int]:
        scored = [p for p in self.pairs if not math.isnan(p.score)]
        return {
            "items": len({p.item_id for p in self.pairs}) if self.pairs else 0,
            "pairs": len(self.pairs),
            "scored_pairs": len(scored),
            "unscored_pairs": len(self.pairs) - len(scored),
            "kept_pairs": sum(p.kept for p in self.pairs),
            "dropped_pairs": sum(not p.kept for p in self.pairs),
            "kept_items": len(self.kept),
            "removed_items": len(self.removed_items),
        }

    def examples(self, n: int = 3) -> dict[str, list[PairScore]]:
        """The ``n`` lowest-scoring dropped pairs, the ``n`` highest kept, and the ``n`` kept
        pairs closest above the threshold (the borderline cases worth reading)."""
        scored = [p for p in self.pairs if not math.isnan(p.score)]
        kept = sorted((p for p in scored if p.kept), key=lambda p: p.score)
        dropped = sorted((p for p in scored if not p.kept), key=lambda p: p.score)
        return {"dropped": dropped[:n], "kept": kept[::-1][:n], "borderline": kept[:n]}

    def score_summary(self) -> dict[str, float]:
        s = np.array([p.score for p in self.pairs if not math.isnan(p.score)], dtype=np.float64)
        if not len(s):
            return {}
        q = np.quantile(s, [0.05, 0.25, 0.5, 0.75, 0.95])
        return {"mean": float(s.mean()), "min": float(s.min()), "max": float(s.max()),
                "p05": float(q[0]), "p25": float(q[1]), "median": float(q[2]),
                "p75": float(q[3]), "p95": float(q[4])}  # fmt: skip


# ---------------------------------------------------------------------------- scorers


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def vector_scorer(
    audio_vectors: Mapping[str, np.ndarray],
    encode_text: Callable[[list[str]], np.ndarray],
    *,
    batch_size: int = 256,
) -> PairScorer:
    """A scorer from track vectors (by item id) and a text encoder (list of N texts -> (N, D)).

    Both sides are L2-normalised here, so raw head outputs work. Items without a vector score
    ``nan``. This is the self-filtering door: pass the current model of a training run.
    """

    def score(items: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        out = np.full(len(pairs), np.nan, dtype=np.float64)
        texts = list(dict.fromkeys(items[i]["texts"][j]["text"] for i, j in pairs))
        if not texts:
            return out
        chunks = [
            _normalise(encode_text(texts[s : s + batch_size]))
            for s in range(0, len(texts), batch_size)
        ]
        text_vec = dict(zip(texts, np.concatenate(chunks), strict=True))
        cache: dict[str, np.ndarray | None] = {}
        for n, (i, j) in enumerate(pairs):
            item_id = items[i]["id"]
            if item_id not in cache:
                v = audio_vectors.get(item_id)
                cache[item_id] = None if v is None else _normalise(v)[0]
            a = cache[item_id]
            if a is not None:
                t = text_vec[items[i]["texts"][j]["text"]]
                if a.shape != t.shape:
                    raise MelodexError(
                        f"vector_scorer: track {item_id!r} has a {a.shape[0]}-d vector but the "
                        f"text encoder gives {t.shape[0]}-d ones"
                    )
                out[n] = float(a @ t)
        return out

    return score


def model_scorer(
    model: Any,
    *,
    root: str | Path,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    failures: list[tuple[str, str]] | None = None,
) -> PairScorer:
    """A scorer from a :class:`~melodex.models.JointModel` (or a name/folder for ``load_model``).

    ``root`` is the folder the items' ``audio`` paths are relative to. Tracks that fail to decode
    score ``nan`` and are appended to ``failures`` when given.
    """
    from melodex.evaluate.embed import embed_items

    if isinstance(model, str | Path):
        from melodex.models import load_model

        model = load_model(model)

    def score(items: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        needed = list(dict.fromkeys(i for i, _ in pairs))
        chosen = [items[i] for i in needed]
        emb = embed_items(model, chosen, root=root, cache_dir=cache_dir, progress=progress)
        if failures is not None:
            failures.extend(emb.failures)
        vectors = {item_id: emb.vectors[emb.row(item_id)] for item_id in emb.ids}

        def encode(texts: list[str]) -> np.ndarray:
            return model.encode_text(texts, batch_size=batch_size, normalize=True)

        return vector_scorer(vectors, encode)(items, pairs)

    return score


def _scorer_name(model: Any) -> str:
    identity = getattr(model, "identity", None)
    if isinstance(identity, str):
        return identity
    config = getattr(model, "config", None)
    return str(getattr(config, "name", None) or model)


# ---------------------------------------------------------------------------- filtering


def filter_items(
    items: Sequence[Mapping[str, Any]],
    scorer: PairScorer,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    kinds: Sequence[str] = DEFAULT_KINDS,
    drop_emptied: bool = True,
    scorer_name: str = "scorer",
) -> FilterResult:
    """Score every pair of a scored kind, keep those with ``score >= threshold``.

    ``nan`` scores (unscorable pairs) are kept and counted as unscored. The input is not
    modified; ``kept``/``dropped`` are new item dicts (see the module docstring).
    """
    if not math.isfinite(threshold):
        raise MelodexError(f"threshold must be a finite number, got {threshold!r}")
    kinds = tuple(kinds)
    pairs = [
        (i, j)
        for i, item in enumerate(items)
        for j, text in enumerate(item.get("texts", []))
        if text.get("kind") in kinds
    ]
    scores = np.asarray(scorer(items, pairs), dtype=np.float64) if pairs else np.zeros(0)
    if scores.shape != (len(pairs),):
        raise MelodexError(
            f"scorer returned {scores.shape} scores for {len(pairs)} pairs (expected one per pair)"
        )
    by_item: dict[int, dict[int, float]] = {}
    for (i, j), s in zip(pairs, scores, strict=True):
        by_item.setdefault(i, {})[j] = float(s)
    kept_items: list[dict[str, Any]] = []
    dropped_items: list[dict[str, Any]] = []
    judged: list[PairScore] = []
    removed: list[str] = []
    for i, item in enumerate(items):
        item_scores = by_item.get(i, {})
        keep_idx, drop_idx = [], []
        for j, text in enumerate(item.get("texts", [])):
            s = item_scores.get(j)
            ok = s is None or math.isnan(s) or s >= threshold
            (keep_idx if ok else drop_idx).append(j)
            if s is not None:
                judged.append(PairScore(str(item["id"]), j, text["kind"], text["text"], s, kept=ok))
        emptied = bool(item_scores) and not any(j in item_scores for j in keep_idx)
        if drop_idx:
            dropped_items.append(_subset(item, drop_idx, item_scores, scorer_name))
        if emptied and drop_emptied:
            removed.append(str(item["id"]))
            continue
        kept_items.append(_subset(item, keep_idx, item_scores, scorer_name))
    return FilterResult(kept_items, dropped_items, judged, float(threshold), scorer_name, removed)


def _subset(
    item: Mapping[str, Any], indices: list[int], scores: Mapping[int, float], scorer_name: str
) -> dict[str, Any]:
    out = copy.deepcopy(dict(item))
    out["texts"] = [copy.deepcopy(item["texts"][j]) for j in indices]
    extra = dict(out.get("extra") or {})
    extra["relevance"] = [
        None if j not in scores or math.isnan(scores[j]) else round(scores[j], 6) for j in indices
    ]
    extra["relevance_model"] = scorer_name
    out["extra"] = extra
    return out


def rebase_audio(
    items: Sequence[Mapping[str, Any]], *, src_root: str | Path, dst_root: str | Path
) -> list[dict[str, Any]]:
    """Rewrite relative ``audio`` paths so a manifest written to ``dst_root`` finds the files
    that were relative to ``src_root`` (absolute paths are left alone)."""
    src, dst = Path(src_root).resolve(), Path(dst_root).resolve()
    out = []
    for item in items:
        item = dict(item)
        audio = Path(item["audio"])
        if not audio.is_absolute() and src != dst:
            item["audio"] = os.path.relpath(src / audio, dst)
        out.append(item)
    return out


def filter_manifest(
    manifest: str | Path,
    *,
    model: Any = "melodex-base",
    scorer: PairScorer | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    kinds: Sequence[str] = DEFAULT_KINDS,
    drop_emptied: bool = True,
    out_kept: str | Path | None = None,
    out_dropped: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> FilterResult:
    """Read a manifest, filter it with ``model`` (or a ready ``scorer``), write the outputs.

    Audio paths of the written manifests are rewritten relative to their own folders.
    """
    from melodex.data.manifest import read_manifest, write_manifest

    manifest = Path(manifest)
    items = read_manifest(manifest, check_audio=scorer is None)
    if scorer is None:
        from melodex.models import load_model

        joint = load_model(model) if isinstance(model, str | Path) else model
        scorer = model_scorer(joint, root=manifest.parent, cache_dir=cache_dir, progress=progress)
        name = _scorer_name(joint)
    else:
        name = _scorer_name(model) if model is not None else "scorer"
    result = filter_items(
        items, scorer, threshold=threshold, kinds=kinds, drop_emptied=drop_emptied,
        scorer_name=name,
    )  # fmt: skip
    for path, chosen in ((out_kept, result.kept), (out_dropped, result.dropped)):
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_manifest(
                path, rebase_audio(chosen, src_root=manifest.parent, dst_root=path.parent)
            )
    return result
