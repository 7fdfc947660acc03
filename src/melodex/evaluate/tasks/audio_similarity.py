"""Audio -> audio similarity on the manifest's own labels: melodex's tasks, not the papers'.

These measure whether tracks that share a tag or an artist sit close in the joint space. They
are *not* TTMR++'s similarity protocols (those are `ttmrpp_artist` on the OLGA graph and
`ttmrpp_track` on DIM-SIM's voted triplets) and are registered under their own names.

tag-triplets
    ``n_triplets`` triplets drawn with ``numpy.random.default_rng(seed)``: a label uniformly
    among labels with >= 2 positives and >= 1 negative ("balanced" sampling, as Won et al. sample
    for training), then an anchor and a distinct positive among its tracks, and a negative among
    the tracks without it. Labels are the merged tags, or the value of ``field``. Accuracy =
    P(sim(a, p) > sim(a, n)); a tie counts as the convention's ``pair_ties`` says (1/2).
same-artist
    Each track with a known artist queries every *other* track (its own column is removed);
    relevant = same artist (case-insensitive). Placeholders (``traditional``, ``anonymous``,
    ``unknown``, ``various artists``) are not artists: such tracks stay in the gallery as
    non-relevant and ask no query. Queries without another track by the artist are left out or
    scored 0 as the convention says. nDCG@200 and the usual retrieval metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import Convention
from melodex.evaluate.tasks.common import (
    PLACEHOLDER_ARTISTS,
    TaskResult,
    TaskSkippedError,
    conv_of,
    field_value,
    gallery,
    label,
    pair_correct,
    retrieval,
    tag_groups,
    with_ci,
)
from melodex.models import JointModel

__all__ = ["same_artist_retrieval", "tag_triplets"]


def tag_triplets(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    n_triplets: int = 1000,
    field: str | None = None,
    merge_synonyms: bool = True,
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Anchor/positive share a label, the negative lacks it; accuracy of sim(a,p) > sim(a,n)."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    if field is None:
        labels = tag_groups(tracks, merge=merge_synonyms)
    else:
        labels = [{lab} if (lab := label(field_value(it, field))) else set() for it in tracks]
    members: dict[str, list[int]] = {}
    for i, s in enumerate(labels):
        for t in s:
            members.setdefault(t, []).append(i)
    n = len(tracks)
    eligible = sorted(t for t, m in members.items() if len(m) >= 2 and len(m) < n)
    if not eligible:
        raise TaskSkippedError("no label with >= 2 tracks and a track without it")
    rng = np.random.default_rng(seed)
    trip = np.empty((n_triplets, 3), dtype=np.int64)
    chosen = []
    for r in range(n_triplets):
        name = eligible[int(rng.integers(len(eligible)))]
        pos = members[name]
        neg = np.setdiff1d(np.arange(n), pos)
        a, p = rng.choice(pos, size=2, replace=False)
        trip[r] = (a, p, neg[int(rng.integers(neg.size))])
        chosen.append(name)
    sims = (vectors @ vectors.T).astype(np.float64)
    correct = pair_correct(sims[trip[:, 0], trip[:, 1]], sims[trip[:, 0], trip[:, 2]], conv)
    metrics = {
        **with_ci("accuracy", correct, seed),
        "n_triplets": n_triplets,
        "n_labels": len(eligible),
    }
    return TaskResult(
        "tag-triplets",
        metrics,
        {"correct": correct},
        {
            "labels": "merged tags" if field is None else field,
            "sampling": "label uniform, then anchor/positive with it, negative without it",
            "label_counts": dict(Counter(chosen).most_common()),
            "convention": conv.describe(),
        },
    )


def same_artist_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    k: int = 200,
    placeholders: Sequence[str] = PLACEHOLDER_ARTISTS,
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Track -> other tracks; relevant = same artist; nDCG@k (k=200) and retrieval metrics."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    n = len(tracks)
    if n < 2:
        raise TaskSkippedError("same-artist retrieval needs >= 2 tracks")
    ignore = {p.strip().casefold() for p in placeholders}
    artist = [str(it.get("artist") or "").strip().casefold() for it in tracks]
    artist = [a if a not in ignore else None for a in artist]
    queries = [i for i in range(n) if artist[i] is not None]
    others = ~np.eye(n, dtype=bool)
    sims = (vectors @ vectors.T)[others].reshape(n, n - 1)
    same = np.array([[a is not None and a == b for b in artist] for a in artist])
    rel = same[others].reshape(n, n - 1)[queries]
    if not rel.any():
        raise TaskSkippedError("no artist has two tracks in the split")
    metrics, per_query = retrieval(sims[queries], rel, seed, conv, ndcg_k=k)
    return TaskResult(
        "same-artist",
        metrics,
        per_query,
        {
            "queries": [str(tracks[i]["id"]) for i in queries],
            "n_artists": len({a for a in artist if a is not None}),
            "placeholders": sorted(ignore),
            "convention": conv.describe(),
        },
    )
