"""Tag query -> tracks (TTMR's tag tables, Won et al.'s tag-based retrieval).

Each tag of the vocabulary is a query; its relevant tracks are those carrying it. The vocabulary
is either

- an explicit list, ``tags=`` a named list (``ttmr-50``, ``ttmr-1054``, ``mtt-top50``; see
  `melodex.data.tag_lists`) or a file (``.txt`` one tag a line, ``.json`` a list such as
  MSD-eCALS's ``ecals_tags.json``): the papers' protocol. Tags are matched to the items' tags
  exactly (lower-case), with no synonym merging, and the query text is the bare tag. A listed tag
  with no positive track (or no negative) in the split has no AUC and is skipped, named in
  ``details["skipped_tags"]`` (scikit-learn, which the papers use, would raise);
- or chosen from the split: raw tags merged into groups by `melodex.text.merge_synonyms` (the
  group named by its most common spelling), each with ``>= min_positives`` positives and a
  negative; ``top_n=50`` keeps the 50 most frequent (ties by name), ``top_n=None`` all. This is
  melodex's own choice, reported as such (``details["vocabulary"]``).

Reported, averaged over tags (macro): ``mAP`` (untruncated AP, normalised by the tag's number of
relevant tracks: the textbook AP), ``ROC-AUC`` and ``PR-AUC`` (sklearn's ``roc_auc_score`` and
``average_precision_score``, ties as sklearn), and ``P@10`` (Won et al.: relevant tracks in the
top 10, divided by 10; the convention's tie rule orders the top 10).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import Convention, pr_auc, precision_at_k, roc_auc
from melodex.evaluate.metrics.retrieval import average_precision_at_k
from melodex.evaluate.tasks.common import (
    TaskResult,
    TaskSkippedError,
    conv_of,
    encode,
    gallery,
    tag_groups,
    with_ci,
)
from melodex.models import JointModel

__all__ = ["tag_retrieval"]


def tag_retrieval(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    tags: str | Path | Sequence[str] | None = None,
    top_n: int | None = 50,
    min_positives: int = 1,
    merge_synonyms: bool = True,
    synonyms: Mapping[str, str] | None = None,
    precision_k: int = 10,
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Tag query -> tracks: mAP, ROC-AUC, PR-AUC and P@10, macro over the tag vocabulary."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    n = len(tracks)
    skipped: list[str] = []
    if tags is not None:
        from melodex.data.tag_lists import read_tag_list

        listed = (
            [" ".join(str(t).lower().split()) for t in tags]
            if isinstance(tags, list | tuple)
            else read_tag_list(tags)
        )
        labels = tag_groups(tracks, merge=False)
        counts = Counter(t for s in labels for t in s)
        vocab = [t for t in listed if 0 < counts[t] < n]
        skipped = [t for t in listed if not 0 < counts[t] < n]
        source = (
            f"list {tags if not isinstance(tags, list | tuple) else 'given'} ({len(listed)} tags)"
        )
    else:
        labels = tag_groups(tracks, merge=merge_synonyms, synonyms=synonyms)
        counts = Counter(t for s in labels for t in s)
        vocab = sorted(
            (t for t, c in counts.items() if c >= min_positives and c < n),
            key=lambda t: (-counts[t], t),
        )
        if top_n is not None:
            vocab = vocab[:top_n]
        source = f"the split's {'top ' + str(top_n) if top_n else 'every'} tag(s)" + (
            " after merging synonyms" if merge_synonyms else ""
        )
    if not vocab:
        raise TaskSkippedError(
            f"no tag with >= {min_positives} positive(s) and a negative among {n} tracks"
            if tags is None
            else f"no listed tag has both positive and negative tracks among {n}"
        )
    rel = np.array([[t in s for s in labels] for t in vocab], dtype=bool)  # (T, N)
    scores = encode(model, vocab) @ vectors.T
    ap = average_precision_at_k(scores, rel, None, convention=conv.with_options(ap_norm="min-k-r"))
    roc = np.asarray(roc_auc(scores.T, rel.T, average="macro", per_group=True))
    pr = np.asarray(pr_auc(scores.T, rel.T, average="macro", per_group=True))
    p_at = np.asarray(precision_at_k(scores, rel, precision_k, per_query=True, convention=conv))
    metrics = {
        **with_ci("mAP", ap, seed),
        **with_ci("ROC-AUC", roc, seed),
        **with_ci("PR-AUC", pr, seed),
        **with_ci(f"P@{precision_k}", p_at, seed),
        "n_tags": len(vocab),
        "n_tags_skipped": len(skipped),
        "n_items": n,
    }
    return TaskResult(
        "tag" if top_n is not None or tags is not None else "tag-all",
        metrics,
        {"AP": ap, "ROC-AUC": roc, "PR-AUC": pr, f"P@{precision_k}": p_at},
        {
            "queries": vocab,
            "positives": [counts[t] for t in vocab],
            "vocabulary": source,
            "skipped_tags": skipped,
            "top_n": top_n if tags is None else None,
            "min_positives": min_positives,
            "merge_synonyms": merge_synonyms if tags is None else False,
            "convention": conv.describe(),
        },
    )
