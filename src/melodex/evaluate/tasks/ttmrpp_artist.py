"""TTMR++ artist retrieval on the OLGA graph (Doh et al., ICASSP 2024, table "artist"; code
``mtrpp/evaluation/eval_olga.py``).

Protocol, as the authors' code computes it:

- ground truth: the OLGA adjacency ``A + A.T`` as integer grades (0, 1, or 2 where an edge is
  stored both ways), read by `melodex.data.loaders.olga.read_olga_graph`;
- an artist's audio embedding is the mean of its tracks' embeddings (here: the pooled vectors
  of its ``pos_tracks`` present in the evaluated items, matched by MSD track id), then
  L2-normalised; artists without an embedded track are not in the gallery;
- gallery: every artist with tracks, in OLGA order, **the query artist included** (it is not
  relevant to itself unless the graph says so, so a good model puts a non-relevant item first);
- audio queries: each *test* artist with tracks; text queries: each test artist, as
  ``"similar with artist {names}"`` (its names joined by ", ");
- metric: nDCG@200 with linear gains, as ``sklearn.metrics.ndcg_score``: under the ``ttmr-pp``
  convention (this task's default) tied scores share their gains and an artist connected to no
  gallery artist scores 0 and is averaged in; under ``melodex`` ties are pessimistic and such
  artists are left out (counted).

Reported: ``text_nDCG@200`` (the paper's number) and ``audio_nDCG@200``, each with an interval
over query artists. Evaluate on the OLGA manifest with ``--split all``: the gallery spans every
partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import Convention, ndcg_at_k
from melodex.evaluate.tasks.common import (
    TaskResult,
    TaskSkippedError,
    conv_of,
    encode,
    gallery,
    track_key,
    with_ci,
)
from melodex.models import JointModel

__all__ = ["ttmrpp_artist_retrieval"]

TEMPLATE = "similar with artist {names}"


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def ttmrpp_artist_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    olga: str | Path | None = None,
    queries: str = "both",
    k: int = 200,
    template: str = TEMPLATE,
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Test artists retrieve similar artists on the OLGA graph; nDCG@k (see the module doc)."""
    from melodex.data.loaders.olga import read_olga_graph

    if olga is None:
        raise TaskSkippedError("ttmrpp-artist needs olga=<TTMR++'s olga-msd folder>")
    if queries not in ("text", "audio", "both"):
        raise TaskSkippedError(f"queries must be text, audio or both, got {queries!r}")
    conv = conv_of(convention)
    graph = read_olga_graph(olga)
    tracks, vectors = gallery(items, audio_embeddings)
    row_of = {track_key(it): i for i, it in enumerate(tracks)}
    index = graph.index()
    gallery_idx, artist_vecs, n_missing = [], [], 0
    for mbid in graph.artists:
        listed = graph.tracks.get(mbid, [])
        rows = [row_of[t] for t in listed if t in row_of]
        n_missing += len(listed) - len(rows)
        if rows:
            gallery_idx.append(index[mbid])
            artist_vecs.append(vectors[rows].astype(np.float64).mean(axis=0))
    if not gallery_idx:
        raise TaskSkippedError("no OLGA artist has an embedded track among the items")
    gallery_arr = np.array(gallery_idx)
    artist_emb = _normalised(np.stack(artist_vecs))
    test = np.array([i for i, p in enumerate(graph.partitions) if p == "test"])
    metrics: dict[str, float] = {}
    per_query: dict[str, np.ndarray] = {}
    details: dict[str, Any] = {
        "n_gallery_artists": len(gallery_idx),
        "n_tracks_missing": n_missing,
        "template": template,
        "convention": conv.describe(),
    }
    name = f"nDCG@{k}"
    if queries in ("text", "both") and test.size:
        texts = [
            template.format(names=", ".join(graph.names.get(graph.artists[i], []))) for i in test
        ]
        scores = encode(model, texts).astype(np.float64) @ artist_emb.T
        values = _ndcg(scores, graph.grades(test, gallery_arr), k, conv)
        metrics.update(with_ci(f"text_{name}", values, seed))
        per_query[f"text_{name}"] = values
        details["text_queries"] = [graph.artists[i] for i in test]
        metrics["n_text_queries"] = int(np.isfinite(values).sum())
    in_gallery = {int(g): j for j, g in enumerate(gallery_arr)}
    audio_q = np.array([i for i in test if int(i) in in_gallery])
    if queries in ("audio", "both") and audio_q.size:
        q_emb = artist_emb[[in_gallery[int(i)] for i in audio_q]]
        values = _ndcg(q_emb @ artist_emb.T, graph.grades(audio_q, gallery_arr), k, conv)
        metrics.update(with_ci(f"audio_{name}", values, seed))
        per_query[f"audio_{name}"] = values
        details["audio_queries"] = [graph.artists[i] for i in audio_q]
        metrics["n_audio_queries"] = int(np.isfinite(values).sum())
    if not per_query:
        raise TaskSkippedError("no test artist to query (OLGA partition 'test')")
    metrics["n_gallery_artists"] = len(gallery_idx)
    return TaskResult("ttmrpp-artist", metrics, per_query, details)


def _ndcg(scores: np.ndarray, grades: np.ndarray, k: int, conv: Convention) -> np.ndarray:
    if not (grades > 0).any():
        raise TaskSkippedError("no query artist is connected to a gallery artist")
    return np.asarray(
        ndcg_at_k(scores, grades, k, per_query=True, empty_queries=None, convention=conv)
    )
