"""Fit a linear baseline (CCA, WSABIE, random) on a manifest's train split, save it as a model.

The features are the frozen extractors of :class:`melodex.evaluate.baselines.BaselineFeatures`
(musicnn tag probabilities averaged over windows, all-MiniLM-L6-v2 sentence embeddings); every
(track, text) pair of the chosen kinds is one training pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.data.features import FeatureCache
from melodex.data.manifest import read_manifest
from melodex.errors import MelodexError
from melodex.evaluate.baselines import BaselineFeatures, LinearProjectionModel, fit_baseline
from melodex.progress import ProgressFn


def fit_manifest_baseline(
    kind: str,
    manifest: str | Path,
    *,
    name: str,
    dim: int = 64,
    kinds: Sequence[str] = ("caption",),
    progress: ProgressFn | None = None,
    cache_dir: str | Path = ".cache/melodex-features",
    **fit_options: Any,
) -> LinearProjectionModel:
    """Features of the train split -> fitted baseline model (save it with ``.save(folder)``).

    Audio features are cached by content hash under ``cache_dir``, so fitting several
    baselines on one manifest computes them once."""
    path = Path(manifest)
    items = [i for i in read_manifest(path) if i["split"] == "train"]
    if not items:
        raise MelodexError(f"{path}: no train items to fit a baseline on")
    features = BaselineFeatures()
    cache = FeatureCache(
        cache_dir, f"baseline-audio|{','.join(features.tagger_names)}|max_windows=8"
    )
    audio_rows = []
    for n, item in enumerate(items, start=1):
        audio = path.parent / item["audio"]
        audio_rows.append(cache.get(audio, lambda p: features.audio(p)[None])[0])
        if progress is not None:
            progress(n, len(items), str(audio))
    texts: list[str] = []
    pairs: list[tuple[int, int]] = []
    for i, item in enumerate(items):
        for t in item["texts"]:
            if t["kind"] in kinds:
                pairs.append((i, len(texts)))
                texts.append(t["text"])
    if not pairs:
        raise MelodexError(f"{path}: no texts of kinds {list(kinds)} in the train split")
    return fit_baseline(
        kind,
        np.stack(audio_rows),
        features.text(texts),
        name=name,
        dim=min(dim, len(items) - 1),
        pairs=np.asarray(pairs),
        features=features,
        **fit_options,
    )
