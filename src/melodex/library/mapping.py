"""The library map: every track placed in 2-D by PCA of its stored vector."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from melodex.library.backends import LibraryStore


@dataclass
class TrackMap:
    """Every track placed in 2-D (PCA of the stored vectors), as of one store version."""

    store_version: int
    explained_variance: list[float]
    points: list[dict[str, Any]]  # id, x, y in [0, 1], title, artist

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``vectors`` onto their first two principal components.

    Parameters
    ----------
    vectors : np.ndarray, shape (N, D)

    Returns
    -------
    coords : np.ndarray, shape (N, 2), float32
        Scaled to [0, 1] per axis (0.5 where an axis has no spread). Signs are fixed so the
        largest loading of each component is positive, so the map does not flip between runs.
    explained : np.ndarray, shape (2,)
        Fraction of the total variance each axis carries (0 when there is none).

    Examples
    --------
    >>> coords, explained = pca_2d(np.eye(3, dtype=np.float32))
    >>> coords.shape
    (3, 2)
    """
    x = np.asarray(vectors, np.float64)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros(2)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = np.zeros((2, x.shape[1]))
    k = min(2, vt.shape[0])
    comps[:k] = vt[:k]
    for i in range(k):
        if comps[i, np.argmax(np.abs(comps[i]))] < 0:
            comps[i] = -comps[i]
    proj = centred @ comps.T
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    span = hi - lo
    coords = np.where(span > 1e-12, (proj - lo) / np.where(span > 1e-12, span, 1.0), 0.5)
    var = s**2
    total = var.sum()
    explained = np.zeros(2)
    if total > 0:
        explained[:k] = var[:k] / total
    return coords.astype(np.float32), explained


def build_track_map(store: LibraryStore | None) -> TrackMap:
    """The map of a store as of its current version (``None``, or an empty store: no points)."""
    version = 0 if store is None else store.version
    if store is None or len(store) == 0:
        return TrackMap(store_version=version, explained_variance=[0.0, 0.0], points=[])
    ids, vectors = store.vectors()
    rows = {r["id"]: r for r in store.rows(columns=["id", "title", "artist"])}
    coords, explained = pca_2d(vectors)
    points = []
    for tid, (x, y) in zip(ids.tolist(), coords.tolist(), strict=True):
        r = rows.get(tid, {})
        points.append(
            {"id": tid, "x": round(x, 5), "y": round(y, 5),
             "title": r.get("title"), "artist": r.get("artist")}
        )  # fmt: skip
    return TrackMap(
        store_version=version,
        explained_variance=[round(float(v), 5) for v in explained],
        points=points,
    )
