"""Clustered synthetic unit vectors for search benchmarks and tests.

Uniform random vectors in 384 dimensions are nearly orthogonal to one another, so every point is
about equally far from every other; ANN indexes then score recall ~0.03 and the benchmark says
nothing about real embeddings (FINDINGS, "Vector search"). Real music embeddings are clumpy: genres
contain styles, styles contain near-duplicates, and a few styles hold most tracks. This module
draws a two-level mixture of Gaussians on the sphere with Zipf-distributed cluster sizes and
per-cluster spreads, and queries near the same clusters (queries land where the data is).

Both functions derive the cluster layout from ``seed`` only, so vectors and queries made with the
same ``(dim, n_clusters, spread, seed)`` share clusters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["clustered_vectors", "clustered_queries"]

_CHUNK = 65_536


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _layout(
    dim: int, n_clusters: int, spread: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster centres (two-level: families of clusters), Zipf weights and per-cluster spreads."""
    if n_clusters < 1 or dim < 2 or spread < 0:
        raise ValueError(
            f"need n_clusters >= 1, dim >= 2, spread >= 0; got {n_clusters}, {dim}, {spread}"
        )
    rng = np.random.default_rng([seed, 0])
    n_families = max(1, int(round(np.sqrt(n_clusters))))
    families = _normalise(rng.standard_normal((n_families, dim), dtype=np.float32))
    family_of = rng.integers(0, n_families, size=n_clusters)
    # Clusters sit at angle ~45-60 degrees from their family centre: related, but distinct.
    offsets = rng.standard_normal((n_clusters, dim), dtype=np.float32) / np.sqrt(dim)
    centres = _normalise(families[family_of] + offsets.astype(np.float32) * 1.2)
    ranks = rng.permutation(n_clusters) + 1
    weights = 1.0 / ranks**1.1  # Zipf-like: a few big clusters, a long tail of small ones
    weights /= weights.sum()
    spreads = (spread * rng.lognormal(0.0, 0.3, size=n_clusters)).astype(np.float32)
    return centres, weights, spreads


def _sample(
    n: int,
    centres: np.ndarray,
    weights: np.ndarray,
    spreads: np.ndarray,
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        which = rng.choice(len(centres), size=stop - start, p=weights)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
        # Noise of norm ~spread (independent of dim), so spread ~ angular radius in radians.
        noise *= (scale * spreads[which] / np.sqrt(dim))[:, None]
        out[start:stop] = centres[which] + noise
    return _normalise(out)


def clustered_vectors(
    n: int, dim: int, *, n_clusters: int = 1000, spread: float = 0.5, seed: int = 0
) -> np.ndarray:
    """(n, dim) float32 L2-normalised vectors drawn from a Zipf mixture of clusters on the sphere.

    ``spread`` is roughly the angular radius of a cluster (radians); 0.3-0.7 gives neighbourhoods
    that are tight but not degenerate, like sentence/audio embeddings.
    """
    centres, weights, spreads = _layout(dim, n_clusters, spread, seed)
    return _sample(n, centres, weights, spreads, 1.0, np.random.default_rng([seed, 1]))


def clustered_queries(
    n: int,
    dim: int,
    *,
    n_clusters: int = 1000,
    spread: float = 0.5,
    seed: int = 0,
    query_seed: int = 1,
    offset: float = 1.2,
) -> np.ndarray:
    """(n, dim) queries near the clusters of :func:`clustered_vectors` with the same arguments.

    ``offset`` scales the query noise relative to the data's spread: text queries do not sit
    exactly on the audio points, so they are drawn a little looser than the data.
    """
    centres, weights, spreads = _layout(dim, n_clusters, spread, seed)
    rng = np.random.default_rng([seed, 2, query_seed])
    return _sample(n, centres, weights, spreads, offset, rng)
