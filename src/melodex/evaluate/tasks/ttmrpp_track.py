"""TTMR++ track similarity on DIM-SIM's human-voted triplets (Doh et al., ICASSP 2024, table
"track"; code ``mtrpp/evaluation/eval_dimsim.py``).

Protocol, as the authors' code computes it: for each triplet (anchor, song 1, song 2) of 3-second
MSD clips, the *anchor is text*, ``"similar music track with {title} by {artist} from {album}"``
from the anchor clip's MSD metadata (the issue text and the paper abbreviate it without the
album; ``template=`` changes it), song 1 and song 2 are audio clips; the model predicts song 1
when ``sim(anchor, song1) > sim(anchor, song2)``, and the score is the accuracy against the
votes (``song1_vote``). A tie predicts song 2 in the authors' code (``pair_ties="second"``, the
``ttmr-pp`` convention, this task's default); the melodex convention counts it 1/2.
``anchor="audio"`` uses the anchor clip's audio instead (TTMR++ computes it, the paper reports
text).

Inputs: the DIM-SIM manifest (``melodex data load dim-sim``; items are the clips, with
``start``/``end`` and title/artist/album) and ``triplets=`` its csv. Triplets whose clips are not
all embedded, or whose anchor lacks a title or artist, are left out and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import Convention
from melodex.evaluate.tasks.common import (
    TaskResult,
    TaskSkippedError,
    conv_of,
    encode,
    pair_correct,
    with_ci,
)
from melodex.models import JointModel

__all__ = ["ttmrpp_track_similarity"]

TEMPLATE = "similar music track with {title} by {artist} from {album}"


def ttmrpp_track_similarity(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    triplets: str | Path | None = None,
    anchor: str = "text",
    template: str = TEMPLATE,
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Agreement with DIM-SIM's votes, text anchor against two audio clips (module doc)."""
    from melodex.data.loaders.dimsim import read_triplets

    if triplets is None:
        raise TaskSkippedError("ttmrpp-track needs triplets=<clean-dim-sim.csv or its folder>")
    if anchor not in ("text", "audio"):
        raise TaskSkippedError(f"anchor must be text or audio, got {anchor!r}")
    conv = conv_of(convention)
    emb = audio_embeddings
    by_id = {str(it["id"]): it for it in items}
    kept, texts, no_audio, no_text = [], [], 0, 0
    for t in read_triplets(triplets):
        needed = (t.song1, t.song2) + ((t.anchor,) if anchor == "audio" else ())
        if not all(c in emb for c in needed):
            no_audio += 1
            continue
        if anchor == "text":
            info = by_id.get(t.anchor, {})
            fields = {f: str(info.get(f) or "").strip() for f in ("title", "artist", "album")}
            if not fields["title"] or not fields["artist"]:
                no_text += 1
                continue
            texts.append(template.format(**fields))
        kept.append(t)
    if not kept:
        raise TaskSkippedError(
            f"no usable triplet ({no_audio} lack embedded clips, {no_text} lack anchor metadata)"
        )
    song1 = emb.vectors[emb.rows([t.song1 for t in kept])].astype(np.float64)
    song2 = emb.vectors[emb.rows([t.song2 for t in kept])].astype(np.float64)
    if anchor == "text":
        anchors = encode(model, texts).astype(np.float64)
    else:
        anchors = emb.vectors[emb.rows([t.anchor for t in kept])].astype(np.float64)
    sim1, sim2 = (anchors * song1).sum(axis=1), (anchors * song2).sum(axis=1)
    votes = np.array([t.song1_vote for t in kept])
    predicted = pair_correct(sim1, sim2, conv)  # P(predict song 1): 1, 0 or the tie value
    correct = np.where(votes == 1, predicted, 1.0 - predicted)
    metrics = {
        **with_ci("accuracy", correct, seed),
        "n_triplets": len(kept),
        "n_triplets_without_audio": no_audio,
        "n_triplets_without_anchor_text": no_text,
    }
    return TaskResult(
        "ttmrpp-track",
        metrics,
        {"correct": correct},
        {
            "anchor": anchor,
            "template": template if anchor == "text" else None,
            "queries": [t.anchor for t in kept],
            "convention": conv.describe(),
        },
    )
