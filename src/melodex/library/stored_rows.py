"""A file's embedding read back from the store while the file is unchanged.

``tag``, ``describe`` and ``highlight`` of an indexed file then need no decoding and no model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from melodex.models import AudioEmbedding


def stored_embedding(row: dict[str, Any] | None, path: Path) -> AudioEmbedding | None:
    """The embedding a store ``row`` holds for ``path``, or None when the row is missing, has no
    tag scores, or the file changed since (size or modification time differ)."""
    if row is None or row["tag_scores"] is None or not os.path.exists(path):
        return None
    st = os.stat(path)
    if st.st_size != row["size"] or st.st_mtime_ns != row["mtime_ns"]:
        return None
    vec = np.asarray(row["vector"], np.float32)
    return AudioEmbedding(
        vector=vec,
        window_vectors=np.asarray(row["window_vectors"], np.float32).reshape(-1, len(vec)),
        window_starts=np.asarray(row["window_starts"], np.float32),
        duration=float(row["duration"]),
        tag_scores=np.asarray(row["tag_scores"], np.float32),
    )
