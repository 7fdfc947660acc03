"""Figures of an evaluation: per-tag AP bars for every model, and a map of one model's joint space.

Matplotlib with the non-interactive Agg backend (no display needed). The joint-space map follows
TTMR's figure: music, tag and caption embeddings of one model projected together to 2-D, with a
marker and colour per modality, so the modality gap and the mixing of tags and sentences show.
UMAP (umap-learn, cosine metric, ``random_state=seed``: deterministic and single-threaded) when it
is installed, otherwise PCA, and the figure's title says which.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError
from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.tasks import tag_groups
from melodex.models import JointModel

__all__ = ["plot_joint_space", "plot_tag_ap", "project_2d"]

MAX_TAGS_SHOWN = 60


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_tag_ap(results: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """One PNG per tag task (``tag_ap_<task>.png``): horizontal bars of each tag's AP, one colour
    per model, tags ordered by number of positives (at most :data:`MAX_TAGS_SHOWN`)."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    written = []
    models = results["models"]
    tasks = sorted(
        {
            t
            for e in models.values()
            for t, r in e.get("tasks", {}).items()
            if "AP" in r.get("per_query", {})
        }
    )
    for task in tasks:
        per_model = {
            name: dict(zip(r["details"]["queries"], r["per_query"]["AP"], strict=True))
            for name, e in models.items()
            if (r := e.get("tasks", {}).get(task)) is not None
        }
        positives: dict[str, int] = {}  # the same items for every model: first one wins
        for e in models.values():
            r = e.get("tasks", {}).get(task)
            if r is not None:
                for t, c in zip(r["details"]["queries"], r["details"]["positives"], strict=True):
                    positives.setdefault(t, c)
        tags = [t for t, _ in sorted(positives.items(), key=lambda kv: (-kv[1], kv[0]))]
        shown = tags[:MAX_TAGS_SHOWN]
        n_models = len(per_model)
        height = 0.8 / max(n_models, 1)
        fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * len(shown) * max(1, n_models * 0.6)))
        y = np.arange(len(shown))
        for k, (name, ap) in enumerate(per_model.items()):
            values = [ap.get(t) if ap.get(t) is not None else np.nan for t in shown]
            ax.barh(y + k * height, values, height=height, label=name)
        ax.set_yticks(y + height * (n_models - 1) / 2)
        ax.set_yticklabels([f"{t} ({positives[t]})" for t in shown], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("average precision (tag as query)")
        more = f", first {len(shown)} of {len(tags)}" if len(tags) > len(shown) else ""
        ax.set_title(f"per-tag AP, task '{task}' (label: tag (positive tracks){more})")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"tag_ap_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def project_2d(x: np.ndarray, *, seed: int = 0, method: str = "umap") -> tuple[np.ndarray, str]:
    """(N, D) -> ((N, 2), description). ``method="umap"`` falls back to PCA without umap-learn."""
    if method not in ("umap", "pca"):
        raise MelodexError(f"projection must be 'umap' or 'pca', got {method!r}")
    x = np.asarray(x, dtype=np.float32)
    if method == "umap" and len(x) >= 4:
        try:
            import umap
        except ImportError:
            note = "PCA (umap-learn not installed)"
        else:
            n_neighbors = int(min(15, len(x) - 1))
            reducer = umap.UMAP(
                n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed
            )
            with warnings.catch_warnings():  # "n_jobs overridden by random_state": intended
                warnings.simplefilter("ignore", UserWarning)
                xy = reducer.fit_transform(x)
            return xy, f"UMAP (cosine, n_neighbors={n_neighbors}, seed {seed})"
    else:
        note = "PCA" if method == "pca" else "PCA (too few points for UMAP)"
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out, note


def plot_joint_space(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    embeddings: AudioEmbeddings,
    path: str | Path,
    *,
    seed: int = 0,
    method: str = "umap",
    max_tags: int = 50,
    max_captions: int = 300,
    title: str | None = None,
) -> str:
    """Music, tag and caption vectors of ``model`` in one 2-D map; returns the projection used.

    Music: every embedded item. Tags: the ``max_tags`` most frequent merged tags of the items.
    Captions: up to ``max_captions`` caption texts (the first of each item, then the rest).
    """
    plt = _pyplot()
    kept = [it for it in items if str(it["id"]) in embeddings]
    music = embeddings.vectors[embeddings.rows([str(it["id"]) for it in kept])]
    counts = Counter(t for s in tag_groups(kept) for t in s)
    tags = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:max_tags]
    per_item = [
        [t["text"] for t in it.get("texts", []) if t.get("kind") == "caption"] for it in kept
    ]
    captions: list[str] = []
    for rank in range(max((len(c) for c in per_item), default=0)):
        captions += [c[rank] for c in per_item if rank < len(c)]
    captions = list(dict.fromkeys(captions))[:max_captions]
    groups = [("music", music)]
    if tags:
        groups.append(("tag", np.asarray(model.encode_text(tags)).reshape(len(tags), -1)))
    if captions:
        groups.append(
            ("caption", np.asarray(model.encode_text(captions)).reshape(len(captions), -1))
        )
    xy, how = project_2d(np.concatenate([g for _, g in groups]), seed=seed, method=method)
    style = {"music": ("o", "tab:blue"), "tag": ("^", "tab:red"), "caption": ("s", "tab:green")}
    fig, ax = plt.subplots(figsize=(8, 7))
    start = 0
    for kind, vecs in groups:
        part = xy[start : start + len(vecs)]
        marker, colour = style[kind]
        ax.scatter(part[:, 0], part[:, 1], marker=marker, c=colour, s=28, alpha=0.75,
                   label=f"{kind} ({len(vecs)})", edgecolors="none")  # fmt: skip
        if kind == "tag":
            for (px, py), text in zip(part[:25], tags[:25], strict=False):
                ax.annotate(text, (px, py), fontsize=7, alpha=0.8, xytext=(3, 2),
                            textcoords="offset points")  # fmt: skip
        start += len(vecs)
    ax.set_title(title or f"joint space of {model.config.name}: {how}", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)
    return how
