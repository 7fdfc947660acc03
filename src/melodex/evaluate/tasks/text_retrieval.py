"""Text -> track and track -> text retrieval: captions (TTMR, TTMR++, WikiMuTe, MARD reviews) and
unseen tag combinations (TTMR).

caption (text -> track)
    The gallery is the split's unique tracks. Every distinct text of the kind (default
    ``caption``) is one query; its relevant items are the tracks carrying exactly that text
    (normally one, so R@k is 1-of-N recall). A track with three captions gives three queries.
    This is TTMR++'s query set (``_get_caption_ground_turth``: unique caption strings, positives
    = the tracks with that caption). TTMR's multi-query benchmark is ``caption:kind=tag`` on the
    MSD-eCALS ``subset=multiquery`` manifest (query = the track's tags joined by ", ").
track2text (track -> text; MARD album retrieval from reviews, in reverse)
    Each track queries the split's distinct texts of a kind; relevant = the track's own texts.
unseen (TTMR unseen-query retrieval)
    Queries are combinations of ``size`` merged tags that co-occur on a split track but on no
    track of the ``seen_items`` (the train split when evaluating valid or test); up to
    ``n_queries`` are drawn with the seed. Query text "a, b and c"; relevant = tracks carrying
    every tag of the combination. Combinations true of every track are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import Convention
from melodex.evaluate.tasks.common import (
    TaskResult,
    TaskSkippedError,
    conv_of,
    encode,
    gallery,
    retrieval,
    tag_groups,
    texts_of,
)
from melodex.models import JointModel

__all__ = ["caption_retrieval", "track_to_text_retrieval", "unseen_query_retrieval"]


def caption_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    kind: str = "caption",
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Text -> track: each distinct text of ``kind`` finds its track among the split's tracks."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    owners: dict[str, set[int]] = {}
    for j, it in enumerate(tracks):
        for text in texts_of(it, kind):
            owners.setdefault(text, set()).add(j)
    if not owners:
        raise TaskSkippedError(f"no text of kind {kind!r} in the split")
    queries = list(owners)
    rel = np.zeros((len(queries), len(tracks)), dtype=bool)
    for q, text in enumerate(queries):
        rel[q, sorted(owners[text])] = True
    scores = encode(model, queries) @ vectors.T
    # several captions of one track are not independent: the CIs resample tracks
    clusters = [min(owners[text]) for text in queries]
    metrics, per_query = retrieval(scores, rel, seed, conv, clusters=clusters)
    return TaskResult(
        "caption" if kind == "caption" else f"{kind}->track",
        metrics,
        per_query,
        {
            "kind": kind,
            "queries": queries,
            "n_tracks": len(tracks),
            "direction": "text->track",
            "convention": conv.describe(),
        },  # fmt: skip
    )


def track_to_text_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    kind: str = "caption",
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Track -> text: each track ranks the split's distinct texts of ``kind``; its own are relevant."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    texts: dict[str, int] = {}
    for it in tracks:
        for text in texts_of(it, kind):
            texts.setdefault(text, len(texts))
    if not texts:
        raise TaskSkippedError(f"no text of kind {kind!r} in the split")
    rel = np.zeros((len(tracks), len(texts)), dtype=bool)
    for q, it in enumerate(tracks):
        rel[q, [texts[t] for t in texts_of(it, kind)]] = True
    scores = vectors @ encode(model, list(texts)).T
    metrics, per_query = retrieval(scores, rel, seed, conv)
    return TaskResult(
        "track2text",
        metrics,
        per_query,
        {
            "kind": kind,
            "queries": [str(it["id"]) for it in tracks],
            "n_texts": len(texts),
            "convention": conv.describe(),
        },  # fmt: skip
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
    convention: Convention | str | None = None,
) -> TaskResult:
    """Queries from tag combinations that no seen (training) track carries; R@k, mAP, nDCG."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    labels = tag_groups([*tracks, *seen_items])
    here, seen = labels[: len(tracks)], labels[len(tracks) :]
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
    scores = encode(model, queries) @ vectors.T
    metrics, per_query = retrieval(scores, rel, seed, conv)
    return TaskResult(
        "unseen",
        metrics,
        per_query,
        {
            "queries": queries,
            "size": size,
            "held_out_against": f"{len(seen_items)} seen item(s)",
            "guaranteed_unseen": bool(seen_items),
            "convention": conv.describe(),
        },
    )
