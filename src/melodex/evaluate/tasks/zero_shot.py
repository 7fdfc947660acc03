"""Zero-shot classification (TTMR, WikiMuTe, TTMR++): each class name is a text query, each track
takes the class whose text it is closest to.

Classes are the values of a manifest field (dotted path, default ``extra.genre``) or the members
of a tag group (an item belongs when it has exactly one member). A class vector is the mean of
its prompt embeddings over ``templates``, L2-normalised (CLIP prompt ensembling). The papers use
the bare label, ``templates=["{label}"]``: that is the registered ``zeroshot`` task;
``zeroshot-prompts`` averages melodex's three prompts (`DEFAULT_TEMPLATES`). Top-1 and top-5
accuracy (top-5 only with more than five classes); a true class tied with another at the k-th
place is a miss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.metrics import Convention, top_k_accuracy
from melodex.evaluate.tasks.common import (
    DEFAULT_TEMPLATES,
    TaskResult,
    TaskSkippedError,
    conv_of,
    encode,
    field_value,
    gallery,
    label,
    tag_groups,
    with_ci,
)
from melodex.models import JointModel

__all__ = ["zero_shot_classification"]


def zero_shot_classification(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    audio_embeddings: AudioEmbeddings,
    field: str = "extra.genre",
    tag_group: Sequence[str] | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    seed: int = 0,
    convention: Convention | str | None = None,
) -> TaskResult:
    """Classify tracks by similarity to prompt-ensembled class vectors; top-1 / top-5 accuracy."""
    conv = conv_of(convention)
    tracks, vectors = gallery(items, audio_embeddings)
    if not templates or any("{label}" not in t for t in templates):
        raise TaskSkippedError(f"every template must contain '{{label}}', got {list(templates)}")
    if tag_group is not None:
        group = {t.strip().lower() for t in tag_group}
        tags = tag_groups(tracks, merge=False)
        found = [sorted(s & group) for s in tags]
        labels = [f[0] if len(f) == 1 else None for f in found]
        source = f"tags {sorted(group)}"
    else:
        labels = [label(field_value(it, field)) for it in tracks]
        source = field
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    classes = sorted({labels[i] for i in keep})  # type: ignore[type-var]
    if len(classes) < 2:
        raise TaskSkippedError(f"zero-shot needs >= 2 classes in {source}, found {classes}")
    prompts = [t.format(label=c) for c in classes for t in templates]
    emb = encode(model, prompts).reshape(len(classes), len(templates), -1).mean(axis=1)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[labels[i]] for i in keep])
    scores = vectors[keep] @ emb.T
    top1 = np.asarray(top_k_accuracy(scores, y, 1, per_item=True))
    metrics = with_ci("top1", top1, seed)
    per_query = {"top1": top1}
    if len(classes) > 5:
        top5 = np.asarray(top_k_accuracy(scores, y, 5, per_item=True))
        metrics.update(with_ci("top5", top5, seed))
        per_query["top5"] = top5
    metrics.update(n_items=len(keep), n_classes=len(classes), n_unlabelled=len(tracks) - len(keep))
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
            "queries": [str(tracks[i]["id"]) for i in keep],
            "convention": conv.describe(),
        },
    )
