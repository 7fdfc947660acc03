"""Fitting the evaluation baselines: CCA, WSABIE and random linear projections.

Each baseline is a pair of affine maps into a joint space, fitted on paired features,
``z_audio = (a - mu_a) @ W_a`` and ``z_text = (t - mu_t) @ W_t``, compared by cosine. The fitted
maps are full joint models (:class:`~melodex.models.linear.LinearProjectionModel`, architecture
``"linear-projection"``, in the models layer) around *frozen* feature extractors, so the library
and the evaluator use them through the same API as the trained models; this module only fits:

- audio features: the packaged musicnn taggers' tag probabilities (by default
  ``MTT_musicnn`` + ``MSD_musicnn``, 50 + 50 values, concatenated in that order, not merged) per
  window, averaged over the windows (as :mod:`melodex.models.zero_shot` pools);
- text features: L2-normalised sentence embeddings (all-MiniLM-L6-v2 by default).

Fitting works on features alone (:func:`fit_cca`, :func:`fit_wsabie`, :func:`fit_random`), so
features can be cached once; :class:`BaselineFeatures` makes them exactly as the model does.

Paired data is either row-aligned (``audio_features[i]`` goes with ``text_features[i]``) or given
by ``pairs``, an ``(P, 2)`` integer array of ``(audio row, text row)`` (several texts per item).

Formulas (as implemented; ``X_a``, ``X_t`` the paired rows, ``N`` of them)
--------------------------------------------------------------------------
Centring
    ``mu_a``, ``mu_t`` are the means of the paired rows (an item in several pairs counts
    several times), stored in the model and subtracted at encode time. Features are not scaled
    per dimension unless ``standardize=True`` (divide by each feature's standard deviation over
    the paired rows; folded into ``W``, so a saved model holds only means and matrices).
CCA (Hotelling; regularised as in ridge/"regularised" CCA)
    ``C_aa = X_a^T X_a / (N - 1) + reg * tr(C)/F_a * I`` (likewise ``C_tt``), ``C_at =
    X_a^T X_t / (N - 1)`` on centred rows; ``reg`` is relative to the mean feature variance, so it
    means the same at any feature scale. Whitening ``K = C_aa^{-1/2} C_at C_tt^{-1/2} = U S V^T``
    (inverse square roots by ``eigh``, pseudo-inverse below ``1e-10 * max`` eigenvalue);
    ``W_a = C_aa^{-1/2} U_k diag(S_k^p)``, ``W_t = C_tt^{-1/2} V_k diag(S_k^p)``, ``k = dim``,
    ``p = corr_power``. With ``p = 0`` the canonical variates have unit (regularised) variance on
    both sides, so the two sides are on the same scale; ``p > 0`` also weights each dimension by
    its canonical correlation before the cosine (Gong et al., 2014 use ``p = 4``). ``S`` are the
    (regularised) canonical correlations. Signs: each pair is flipped so the largest-magnitude
    entry of the ``W_a`` column is positive.
WSABIE (Weston, Bengio & Usunier, 2011) with the WARP loss
    Score ``s(t, a) = cos(z_t, z_a)``. For a text query ``t`` with positive item ``a``, negatives
    ``a'`` (items not paired with ``t``) are drawn uniformly with replacement until one violates
    the margin, ``margin - s(t, a) + s(t, a') > 0``, or ``max_trials`` draws fail (no update).
    After ``k`` draws the rank is estimated as ``r = floor((Y - 1) / k)`` with ``Y - 1`` the
    query's number of negatives, and the loss is ``L(r) * (margin - s(t, a) + s(t, a'))`` with
    ``L(r) = sum_{i=1..r} 1/i`` (:func:`warp_rank_weight`). Adam on minibatches of pairs;
    ``bidirectional=True`` adds the same loss with audio queries and text candidates.
    Deviations from the paper: cosine instead of a dot product with max-norm constraints (the
    library ranks by cosine, and the margin is then in cosine units, ``0 < margin < 2``), Adam
    instead of plain SGD.
Random
    ``W_a``, ``W_t`` independent ``N(0, 1/dim)`` (seeded); the same centring. Chance level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from melodex.encoders.musicnn import MUSICNN_SR, WINDOW_SAMPLES
from melodex.encoders.text import DEFAULT_TEXT_MODEL
from melodex.errors import ParameterError
from melodex.models.config import ModelConfig, options_dict
from melodex.models.linear import (
    ARCHITECTURE,
    DEFAULT_TAGGERS,
    KINDS,
    BaselineFeatures,
    CCAProjection,
    LinearOptions,
    LinearProjection,
    LinearProjectionModel,
    WsabieProjection,
)

__all__ = [
    "KINDS",
    "BaselineError",
    "BaselineFeatures",
    "LinearProjectionModel",
    "fit_baseline",
    "fit_cca",
    "fit_random",
    "fit_wsabie",
    "warp_rank_weight",
]


class BaselineError(ParameterError):
    """Bad inputs to a baseline fit (shapes, pairs, dimensions, options)."""


# ------------------------------------------------------------------------------ inputs


def _features(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise BaselineError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise BaselineError(f"{name} contains NaN or infinite values")
    return arr


def _pairs(pairs: Any, n_audio: int, n_text: int) -> np.ndarray:
    """Validated (P, 2) int64 pairs; None means row-aligned features."""
    if pairs is None:
        if n_audio != n_text:
            raise BaselineError(
                f"audio_features has {n_audio} rows and text_features {n_text}: row-aligned "
                "features need equal rows (or pass pairs=(P, 2) of (audio row, text row))"
            )
        return np.stack([np.arange(n_audio), np.arange(n_audio)], axis=1)
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0 or not np.issubdtype(p.dtype, np.integer):
        raise BaselineError(f"pairs must be a non-empty (P, 2) integer array, got {p.shape}")
    if p.min() < 0 or p[:, 0].max() >= n_audio or p[:, 1].max() >= n_text:
        raise BaselineError(f"pairs index outside the {n_audio} audio / {n_text} text rows")
    return p.astype(np.int64)


def _check_dim(dim: int, limit: int, what: str) -> int:
    if isinstance(dim, bool) or int(dim) != dim or not 1 <= dim <= limit:
        raise BaselineError(f"dim must be an integer in [1, {limit}] ({what}), got {dim!r}")
    return int(dim)


def _centre(x: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-feature divisor (ones unless ``standardize``)."""
    mean = x.mean(axis=0)
    if not standardize:
        return mean, np.ones(x.shape[1])
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


# ------------------------------------------------------------------------------ CCA


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    e, v = np.linalg.eigh(c)
    keep = e > max(float(e.max()), 0.0) * 1e-10
    inv = np.zeros_like(e)
    inv[keep] = 1.0 / np.sqrt(e[keep])
    return (v * inv) @ v.T


def fit_cca(
    audio_features: np.ndarray,
    text_features: np.ndarray,
    *,
    dim: int,
    reg: float = 1e-3,
    pairs: np.ndarray | None = None,
    corr_power: float = 1.0,
    standardize: bool = False,
) -> CCAProjection:
    """Regularised linear CCA in closed form (whitening + SVD); see the module docstring.

    Parameters
    ----------
    audio_features : (Na, Fa) array
    text_features : (Nt, Ft) array
    dim : number of canonical pairs kept, ``1 <= dim <= min(Fa, Ft)``
    reg : ridge on each covariance, relative to its mean eigenvalue (``>= 0``)
    pairs : optional (P, 2) ``(audio row, text row)``; default row-aligned
    corr_power : each joint dimension is scaled by ``correlation ** corr_power``
    standardize : divide features by their standard deviation before the fit

    Returns
    -------
    CCAProjection, with ``correlations`` the top ``dim`` (regularised) canonical correlations.
    """
    A = _features(audio_features, "audio_features")
    T = _features(text_features, "text_features")
    p = _pairs(pairs, len(A), len(T))
    dim = _check_dim(dim, min(A.shape[1], T.shape[1]), "at most the smaller feature dimension")
    if not reg >= 0:
        raise BaselineError(f"reg must be >= 0, got {reg!r}")
    if len(p) < 2:
        raise BaselineError("CCA needs at least 2 pairs")
    mu_a, sd_a = _centre(A[p[:, 0]], standardize)
    mu_t, sd_t = _centre(T[p[:, 1]], standardize)
    Xa = (A[p[:, 0]] - mu_a) / sd_a
    Xt = (T[p[:, 1]] - mu_t) / sd_t
    n = len(p) - 1
    Caa, Ctt, Cat = Xa.T @ Xa / n, Xt.T @ Xt / n, Xa.T @ Xt / n
    Caa += reg * np.trace(Caa) / len(Caa) * np.eye(len(Caa))
    Ctt += reg * np.trace(Ctt) / len(Ctt) * np.eye(len(Ctt))
    Ka, Kt = _inv_sqrt(Caa), _inv_sqrt(Ctt)
    U, S, Vt = np.linalg.svd(Ka @ Cat @ Kt, full_matrices=False)
    S = np.clip(S[:dim], 0.0, None)
    scale = S**corr_power if corr_power else np.ones(dim)
    Wa = Ka @ U[:, :dim] * scale
    Wt = Kt @ Vt[:dim].T * scale
    signs = np.sign(Wa[np.abs(Wa).argmax(axis=0), np.arange(dim)])
    signs[signs == 0] = 1.0
    return CCAProjection(
        kind="cca",
        audio_mean=mu_a,
        audio_proj=Wa * signs / sd_a[:, None],
        text_mean=mu_t,
        text_proj=Wt * signs / sd_t[:, None],
        correlations=S,
    )


# ------------------------------------------------------------------------------ WSABIE


def warp_rank_weight(rank: int | np.ndarray) -> float | np.ndarray:
    """WARP's rank weighting ``L(r) = sum_{i=1..r} 1/i`` (``L(0) = 0``); arrays element-wise."""
    r = np.asarray(rank)
    if (r < 0).any():
        raise BaselineError(f"ranks must be >= 0, got {rank!r}")
    top = int(r.max()) if r.size else 0
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, top + 1))])
    out = table[r.astype(np.int64)]
    return float(out) if np.ndim(rank) == 0 else out


class _Side:
    """Queries and candidates for one WARP direction; positives found by sorted keys."""

    def __init__(self, q_rows: np.ndarray, c_rows: np.ndarray, *, n_query: int, n_cand: int):
        self.q_rows = torch.from_numpy(q_rows)
        self.c_rows = torch.from_numpy(c_rows)
        self.n_cand = n_cand
        keys = np.unique(q_rows * n_cand + c_rows)  # sorted distinct (query, candidate) pairs
        self.keys = torch.from_numpy(keys)
        n_pos = np.bincount(keys // n_cand, minlength=n_query)
        self.n_neg = torch.from_numpy(n_cand - n_pos)  # Y - 1 for each query row

    def is_positive(self, q: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        key = q[:, None] * self.n_cand + cand
        idx = torch.searchsorted(self.keys, key).clamp(max=len(self.keys) - 1)
        return self.keys[idx] == key


def _warp_batch(
    side: _Side,
    batch: torch.Tensor,
    zq: torch.Tensor,
    zc_pos: torch.Tensor,
    zc_all: torch.Tensor,
    embed_cand: Any,
    *,
    margin: float,
    max_trials: int,
    chunk: int,
    harmonic: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """Summed WARP loss of a batch of pairs (indices into the side's pair list)."""
    q, B = side.q_rows[batch], len(batch)
    s_pos = (zq * zc_pos).sum(1)
    n_neg = side.n_neg[q]
    limit = torch.minimum(n_neg, torch.tensor(max_trials))
    found = torch.full((B,), -1, dtype=torch.long)  # violating candidate
    trials = torch.zeros(B, dtype=torch.long)  # negatives drawn so far
    with torch.no_grad():
        sp = s_pos.detach()
        zqd = zq.detach()
        while True:
            open_ = (found < 0) & (trials < limit)
            if not open_.any():
                break
            rows = open_.nonzero().squeeze(1)
            cand = torch.randint(0, side.n_cand, (len(rows), chunk), generator=gen)
            neg = ~side.is_positive(q[rows], cand)
            s = torch.einsum("bd,bkd->bk", zqd[rows], zc_all[cand])
            drawn = trials[rows, None] + neg.long().cumsum(1)  # draws counted up to each one
            viol = neg & (margin - sp[rows, None] + s > 0) & (drawn <= limit[rows, None])
            hit = viol.any(1)
            first = viol.long().argmax(1)
            found[rows[hit]] = cand[hit, first[hit]]
            trials[rows[hit]] = drawn[hit, first[hit]]
            trials[rows[~hit]] = torch.minimum(drawn[~hit, -1], limit[rows[~hit]])
    ok = found >= 0
    if not ok.any():
        return zq.sum() * 0.0
    rank = torch.div(n_neg[ok], trials[ok], rounding_mode="floor")
    s_neg = (zq[ok] * embed_cand(found[ok])).sum(1)
    return (harmonic[rank] * (margin - s_pos[ok] + s_neg)).sum()


def fit_wsabie(
    audio_features: np.ndarray,
    text_features: np.ndarray,
    *,
    dim: int,
    pairs: np.ndarray | None = None,
    margin: float = 1.0,
    lr: float = 0.01,
    epochs: int = 20,
    batch_size: int = 64,
    max_trials: int | None = None,
    bidirectional: bool = False,
    standardize: bool = False,
    seed: int = 0,
) -> WsabieProjection:
    """WSABIE: linear maps of both sides trained with the WARP loss (module docstring).

    ``max_trials`` caps the negatives drawn per query (default: all ``Y - 1``, as in the paper).
    Seeded (a private ``torch.Generator``); deterministic on CPU for a given thread count.
    ``losses`` holds the mean WARP loss per pair for each epoch (taken during the epoch).
    """
    A = _features(audio_features, "audio_features")
    T = _features(text_features, "text_features")
    p = _pairs(pairs, len(A), len(T))
    dim = _check_dim(dim, 1 << 16, "joint dimension")
    if not 0 < margin < 2:
        raise BaselineError(f"margin is in cosine units and must be in (0, 2), got {margin!r}")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise BaselineError(
            f"need epochs >= 1, batch_size >= 1, lr > 0 (got {epochs}, {batch_size}, {lr})"
        )
    mu_a, sd_a = _centre(A[p[:, 0]], standardize)
    mu_t, sd_t = _centre(T[p[:, 1]], standardize)
    Xa = torch.from_numpy(((A - mu_a) / sd_a).astype(np.float32))
    Xt = torch.from_numpy(((T - mu_t) / sd_t).astype(np.float32))
    gen = torch.Generator().manual_seed(int(seed))
    Wa = (torch.randn(Xa.shape[1], dim, generator=gen) / Xa.shape[1] ** 0.5).requires_grad_()
    Wt = (torch.randn(Xt.shape[1], dim, generator=gen) / Xt.shape[1] ** 0.5).requires_grad_()
    opt = torch.optim.Adam([Wa, Wt], lr=lr)
    t2a = _Side(p[:, 1], p[:, 0], n_query=len(T), n_cand=len(A))
    a2t = _Side(p[:, 0], p[:, 1], n_query=len(A), n_cand=len(T)) if bidirectional else None
    most = max(len(A), len(T))
    cap = most if max_trials is None else int(max_trials)
    if cap < 1:
        raise BaselineError(f"max_trials must be >= 1, got {max_trials!r}")
    harmonic = torch.from_numpy(np.asarray(warp_rank_weight(np.arange(most + 1)), np.float32))
    chunk = 64

    def emb_a(i: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(Xa[i] @ Wa, dim=-1)

    def emb_t(i: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(Xt[i] @ Wt, dim=-1)

    losses: list[float] = []
    pa, pt = torch.from_numpy(p[:, 0]), torch.from_numpy(p[:, 1])
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(len(p), generator=gen).split(batch_size):
            with torch.no_grad():
                all_a = torch.nn.functional.normalize(Xa @ Wa, dim=-1)
                all_t = torch.nn.functional.normalize(Xt @ Wt, dim=-1) if a2t else None
            za, zt = emb_a(pa[batch]), emb_t(pt[batch])
            opts = {"margin": margin, "max_trials": cap, "chunk": chunk, "harmonic": harmonic}
            loss = _warp_batch(t2a, batch, zt, za, all_a, emb_a, gen=gen, **opts)
            if a2t is not None:
                loss = loss + _warp_batch(a2t, batch, za, zt, all_t, emb_t, gen=gen, **opts)
            opt.zero_grad()
            (loss / len(batch)).backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total / len(p))
    return WsabieProjection(
        kind="wsabie",
        audio_mean=mu_a,
        audio_proj=Wa.detach().double().numpy() / sd_a[:, None],
        text_mean=mu_t,
        text_proj=Wt.detach().double().numpy() / sd_t[:, None],
        losses=losses,
    )


# ------------------------------------------------------------------------------ random


def fit_random(
    audio_features: np.ndarray,
    text_features: np.ndarray,
    *,
    dim: int,
    pairs: np.ndarray | None = None,
    seed: int = 0,
) -> LinearProjection:
    """Chance level: independent seeded Gaussian maps; the features give only means and sizes."""
    A = _features(audio_features, "audio_features")
    T = _features(text_features, "text_features")
    p = _pairs(pairs, len(A), len(T))
    dim = _check_dim(dim, 1 << 16, "joint dimension")
    rng = np.random.default_rng(seed)
    return LinearProjection(
        kind="random",
        audio_mean=A[p[:, 0]].mean(axis=0),
        audio_proj=rng.standard_normal((A.shape[1], dim)) / dim**0.5,
        text_mean=T[p[:, 1]].mean(axis=0),
        text_proj=rng.standard_normal((T.shape[1], dim)) / dim**0.5,
    )


_FITTERS = {"cca": fit_cca, "wsabie": fit_wsabie, "random": fit_random}


def fit_baseline(
    kind: str,
    audio_features: np.ndarray,
    text_features: np.ndarray,
    *,
    name: str,
    dim: int,
    pairs: np.ndarray | None = None,
    taggers: Sequence[str] = DEFAULT_TAGGERS,
    text_encoder: str = DEFAULT_TEXT_MODEL,
    features: BaselineFeatures | None = None,
    max_windows: int | None = 8,
    **fit_options: Any,
) -> LinearProjectionModel:
    """Fit a baseline on precomputed features and wrap it as a saveable joint model.

    The features must come from the extractors named here (``taggers``, ``text_encoder``;
    :class:`BaselineFeatures` makes them); sizes are checked when the extractors first run.
    ``fit_options`` go to :func:`fit_cca` (``reg``, ``corr_power``, ``standardize``),
    :func:`fit_wsabie` (``margin``, ``lr``, ``epochs``, ``seed``, ...) or :func:`fit_random`
    (``seed``) and are recorded in the config.
    """
    if kind not in _FITTERS:
        raise BaselineError(f"unknown baseline kind {kind!r}; choose one of {KINDS}")
    projection = _FITTERS[kind](audio_features, text_features, dim=dim, pairs=pairs, **fit_options)
    if features is not None:
        taggers, text_encoder = features.tagger_names, features.text_encoder_name
    config = ModelConfig(
        name=name,
        architecture=ARCHITECTURE,
        sample_rate=MUSICNN_SR,
        window_seconds=WINDOW_SAMPLES / MUSICNN_SR,
        max_windows=max_windows,
        text_encoder=text_encoder,
        dim=projection.dim,
        options=options_dict(
            LinearOptions(
                kind=kind,
                taggers=list(taggers),
                audio_feature_dim=int(projection.audio_mean.shape[0]),
                text_feature_dim=int(projection.text_mean.shape[0]),
                fit={k: v for k, v in fit_options.items() if isinstance(v, int | float | bool)},
                n_pairs=int(len(_pairs(pairs, len(audio_features), len(text_features)))),
                **projection.info(),
            )
        ),
    )
    return LinearProjectionModel(config, projection.weights(), features=features)
