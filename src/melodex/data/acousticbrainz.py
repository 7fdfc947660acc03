"""AcousticBrainz low-level descriptors for the loaders: the vector of one document, the matrix
of a manifest's.

The reading and the vector's layout (`DESCRIPTOR_NAMES`, 369 values: MFCC mean, covariance and
inverse covariance, zero-crossing-rate and spectral roll-off statistics) live in
`melodex.audio.acousticbrainz`, a foundation a saved model can use too; this module re-exports
them and adds `descriptor_matrix` for manifests (MARD with ``audio_source="descriptors"``).
The values are raw: standardise them on the training split before a model sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.audio.acousticbrainz import (
    DESCRIPTOR_DIM,
    DESCRIPTOR_NAMES,
    FEATURE_SET,
    STATISTICS,
    descriptor_duration,
    descriptor_vector,
    read_lowlevel,
)
from melodex.data.files import DatasetFormatError

__all__ = [
    "DESCRIPTOR_DIM",
    "DESCRIPTOR_NAMES",
    "FEATURE_SET",
    "STATISTICS",
    "descriptor_duration",
    "descriptor_matrix",
    "descriptor_vector",
    "read_lowlevel",
]


def descriptor_matrix(
    items: Sequence[Mapping[str, Any]], *, root: str | Path
) -> tuple[np.ndarray, list[str]]:
    """``(X (N, DESCRIPTOR_DIM) float32, ids)`` for manifest items whose ``audio`` is a
    descriptor document (``extra["audio_features"] == FEATURE_SET``), paths relative to
    ``root`` (the manifest's folder). Items of another kind raise `DatasetFormatError`."""
    rows, ids = [], []
    for item in items:
        kind = (item.get("extra") or {}).get("audio_features")
        if kind != FEATURE_SET:
            raise DatasetFormatError(
                f"item {item.get('id')!r} has no AcousticBrainz descriptors "
                f"(extra.audio_features={kind!r}, expected {FEATURE_SET!r})"
            )
        rows.append(descriptor_vector(Path(root) / item["audio"]))
        ids.append(str(item["id"]))
    if not rows:
        return np.zeros((0, DESCRIPTOR_DIM), np.float32), ids
    return np.stack(rows), ids
