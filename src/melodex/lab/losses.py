"""Training objectives of the seed methods, as small pure modules.

Every loss takes float32 ``(B, D)`` embeddings, returns a scalar tensor that supports ``backward``,
and raises ``ParameterError`` (a ``ValueError``) naming the bad argument when shapes do not fit. The seed notes live in
seed notes; each class names the one it follows and writes its formula out.

- :class:`InfoNCELoss` -- symmetric NT-Xent with a learnable temperature (TTMR, TTMR++, WikiMuTe),
  with an optional multi-positive mask for batches that hold duplicate captions or tracks.
- :class:`TripletMarginLoss` -- cosine-distance triplet loss, margin 0.4 (tag-based metric
  learning, Won et al.).
- :class:`BidirectionalRankingLoss` -- the two-branch bi-directional ranking loss with
  neighbourhood (structure-preserving) constraints, eq. (6)-(9) of the MARD seed.
- :class:`ClassificationLoss` -- audio embeddings scored against class centroids (TTMR's
  classification baseline), multi-label BCE or single-label cross-entropy.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from melodex.errors import ParameterError

__all__ = [
    "BidirectionalRankingLoss",
    "ClassificationLoss",
    "InfoNCELoss",
    "TripletMarginLoss",
    "cosine_distance",
    "euclidean_distance_matrix",
]


# --------------------------------------------------------------------------- validation helpers


def _check_embeddings(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise ParameterError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ParameterError(f"{name} must have shape (B, D), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ParameterError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ParameterError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def _check_same_shape(names: tuple[str, ...], tensors: tuple[torch.Tensor, ...]) -> None:
    for name, x in zip(names, tensors, strict=True):
        _check_embeddings(name, x)
    first = tensors[0].shape
    for name, x in zip(names[1:], tensors[1:], strict=True):
        if x.shape != first:
            raise ParameterError(
                f"{name} has shape {tuple(x.shape)} but {names[0]} has shape {tuple(first)}"
            )


def _check_square_mask(name: str, mask: torch.Tensor, size: int) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise ParameterError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.shape != (size, size):
        raise ParameterError(f"{name} must have shape ({size}, {size}), got {tuple(mask.shape)}")
    return mask.to(dtype=torch.bool)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine distance ``1 - cos(a_i, b_i)`` of two ``(B, D)`` tensors, shape ``(B,)``."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1, eps=1e-8)


def euclidean_distance_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``d[i, j] = ||a_i - b_j||_2`` for ``(N, D)`` and ``(M, D)`` inputs, shape ``(N, M)``.

    Uses ``|a|^2 + |b|^2 - 2 a.b`` (memory ``N*M``, not ``N*M*D``) clamped at zero, and a
    square root whose gradient is defined as zero where the distance is exactly zero (the plain
    ``sqrt`` would give ``inf * 0 = nan`` when an anchor equals its positive).
    """
    sq = (a * a).sum(dim=1, keepdim=True) + (b * b).sum(dim=1)[None, :] - 2.0 * (a @ b.T)
    sq = sq.clamp(min=0.0)
    positive = sq > 0
    safe = torch.where(positive, sq, torch.ones_like(sq))
    return torch.where(positive, safe.sqrt(), torch.zeros_like(sq))


# --------------------------------------------------------------------------- InfoNCE


class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE / NT-Xent between paired audio and text embeddings.

    Seeds: ``ttmr-universal.md`` ("jointly trained to maximize the similarity between N positive
    pairs of (music, text) associations while minimizing the similarity for negative pairs. This
    is known as multi-modal version of InfoNCE loss"), ``ttmr-plus-plus.md`` ("using a temperature
    parameter τ initialized to 0.1") and ``wikimute.md`` ("optimized with NT-Xent contrastive
    loss").

    With ``a_i``, ``t_j`` L2-normalised and ``s = 1/τ``, ``logits[i, j] = s * a_i . t_j`` and::

        L_a2t = -1/B sum_i 1/|P(i)|  sum_{j in P(i)}  log softmax_j(logits[i, :])[j]
        L_t2a = -1/B sum_j 1/|P'(j)| sum_{i in P'(j)} log softmax_i(logits[:, j])[i]
        L     = (L_a2t + L_t2a) / 2

    where ``P(i) = {j : positive_mask[i, j]}`` and ``P'(j) = {i : positive_mask[i, j]}``. With
    the default identity mask this is CLIP's loss; with a wider mask it is the "L_out" form of
    supervised contrastive learning (Khosla et al. 2020): the log-probabilities of all positives
    are averaged, while every positive still sits in the softmax denominator.

    The temperature is stored as ``log_inv_tau = log(1/τ)`` (CLIP's ``logit_scale``), a
    parameter when ``learnable=True``. In ``forward`` it is clamped to
    ``[log(1/tau_max), log(1/tau_min)]`` so τ stays in ``[tau_min, tau_max]``; the default
    ``tau_min=0.01`` is CLIP's clamp of the logit scale at 100. At the bound the gradient of the
    clamp is zero, which is what CLIP's in-place clamp does too.

    Inputs are L2-normalised inside (``normalize=True``, the default) so that callers can pass
    raw projections; pass ``normalize=False`` only for inputs that are already unit-norm.
    """

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        learnable: bool = True,
        tau_min: float = 0.01,
        tau_max: float = 1.0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < tau_min <= tau_max:
            raise ParameterError(
                f"need 0 < tau_min <= tau_max, got tau_min={tau_min}, tau_max={tau_max}"
            )
        if not tau_min <= temperature <= tau_max:
            raise ParameterError(f"temperature={temperature} lies outside [{tau_min}, {tau_max}]")
        init = torch.tensor(math.log(1.0 / temperature), dtype=torch.float32)
        if learnable:
            self.log_inv_tau = nn.Parameter(init)
        else:
            self.register_buffer("log_inv_tau", init)
        self.tau_min = tau_min
        self.tau_max = tau_max
        self.normalize = normalize

    def logit_scale(self) -> torch.Tensor:
        """``1/τ`` after clamping, a 0-d tensor that carries the gradient."""
        return self.log_inv_tau.clamp(
            math.log(1.0 / self.tau_max), math.log(1.0 / self.tau_min)
        ).exp()

    @property
    def temperature(self) -> float:
        """The temperature τ currently in use (after clamping)."""
        return float(1.0 / self.logit_scale().detach())

    def forward(
        self,
        audio: torch.Tensor,
        text: torch.Tensor,
        *,
        positive_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of a batch of pairs ``(audio[i], text[i])``.

        Parameters
        ----------
        audio, text : (B, D) float tensors, row ``i`` of each forming the ``i``-th pair.
        positive_mask : (B, B) bool tensor, optional
            ``positive_mask[i, j]`` says text ``j`` is a correct match for audio ``i``. The
            diagonal must be True. Build it with :func:`melodex.lab.sampling.positive_mask` when a
            batch holds duplicate captions or duplicate tracks. Default: the identity.
        """
        _check_same_shape(("audio", "text"), (audio, text))
        batch = audio.shape[0]
        if self.normalize:
            audio = F.normalize(audio, dim=-1)
            text = F.normalize(text, dim=-1)
        logits = self.logit_scale() * (audio @ text.T)
        if positive_mask is None:
            target = torch.arange(batch, device=audio.device)
            return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        mask = _check_square_mask("positive_mask", positive_mask, batch)
        if not bool(mask.diagonal().all()):
            raise ParameterError(
                "positive_mask must be True on its diagonal: pair i is its own positive"
            )
        maskf = mask.to(logits.dtype)
        log_p_a2t = F.log_softmax(logits, dim=1)
        log_p_t2a = F.log_softmax(logits, dim=0)
        a2t = -(log_p_a2t * maskf).sum(dim=1) / maskf.sum(dim=1)
        t2a = -(log_p_t2a * maskf).sum(dim=0) / maskf.sum(dim=0)
        return 0.5 * (a2t.mean() + t2a.mean())


# --------------------------------------------------------------------------- triplet


Direction = Literal["tag_to_item", "item_to_tag", "both"]


class TripletMarginLoss(nn.Module):
    """Cosine-distance triplet loss of tag-based metric learning (Won et al. 2021).

    Seed ``tag-based-metric-learning.md``: "For a given anchor tag y, the model maps a positive
    song x_p to be closer than a negative song x_n from the anchor in the multimodal embedding
    space", and its options list ``'--margin', type=float, default=0.4``. The note gives no
    distance; we read it as cosine distance ``d(u, v) = 1 - cos(u, v)`` (the metric the tag and
    song branches are compared with), so per triplet::

        l = max(0, margin + d(tag, x_p) - d(tag, x_n)),   L = mean over the batch

    ``direction="tag_to_item"`` (default) is the seed's. ``"item_to_tag"`` is the reverse: the
    positive song is the anchor, its tag the positive and ``negative_tag`` (a tag the song does
    not carry, see :func:`melodex.lab.sampling.sample_negative_tags`) the negative. ``"both"`` adds
    the two means.
    """

    def __init__(self, *, margin: float = 0.4, direction: Direction = "tag_to_item") -> None:
        super().__init__()
        if margin < 0:
            raise ParameterError(f"margin must be >= 0, got {margin}")
        if direction not in ("tag_to_item", "item_to_tag", "both"):
            raise ParameterError(
                f"direction must be 'tag_to_item', 'item_to_tag' or 'both', got {direction!r}"
            )
        self.margin = margin
        self.direction = direction

    def _hinge(self, anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return F.relu(
            self.margin + cosine_distance(anchor, pos) - cosine_distance(anchor, neg)
        ).mean()

    def forward(
        self,
        tag: torch.Tensor,
        positive: torch.Tensor,
        negative: torch.Tensor,
        *,
        negative_tag: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of ``B`` triplets; all inputs ``(B, D)``: tag anchors, positive and negative songs.

        ``negative_tag`` (B, D) is required when ``direction`` is ``"item_to_tag"`` or ``"both"``.
        """
        _check_same_shape(("tag", "positive", "negative"), (tag, positive, negative))
        loss = tag.new_zeros(())
        if self.direction in ("tag_to_item", "both"):
            loss = loss + self._hinge(tag, positive, negative)
        if self.direction in ("item_to_tag", "both"):
            if negative_tag is None:
                raise ParameterError(f"direction={self.direction!r} needs negative_tag (B, D)")
            _check_same_shape(("tag", "negative_tag"), (tag, negative_tag))
            loss = loss + self._hinge(positive, tag, negative_tag)
        return loss


# --------------------------------------------------------------------------- two-branch ranking


class BidirectionalRankingLoss(nn.Module):
    """Bi-directional ranking loss with neighbourhood constraints (two-branch seed, eq. 6-9).

    Seed ``two-branch-ranking-mard.md`` (Rush et al., "Learning to Rank with Text-Music
    Embeddings", after Wang et al. 2016/2018), with ``d`` the Euclidean distance between
    L2-normalised embeddings ("where d(x, y) refers to the euclidean distance", "L2 normalized
    before placed in the embedding space") and ``[t]_+ = max(0, t)``::

        L = λ1 sum_{i,j,k} [m + d(x_i, y_j) - d(x_i, y_k)]_+      (6) audio anchor, texts
          + λ2 sum_{i,j,k} [m + d(x_j, y_i) - d(x_k, y_i)]_+      (7) text anchor, audios
          + λ3 sum_{i,j,k} [m + d(x_i, x_j) - d(x_i, x_k)]_+      (8) audio neighbourhood
          + λ4 sum_{i,j,k} [m + d(y_i, y_j) - d(y_i, y_k)]_+      (9) text neighbourhood

    In (6)/(7) ``j`` ranges over the matches of anchor ``i`` (``positive_mask``, default the
    pairing ``j = i``) and ``k`` over the non-matches in the batch. In (8)/(9) ``j != i`` ranges
    over items with the same neighbourhood label (the seed: songs of the same album, reviews of
    the same album, eq. 4-5) and ``k`` over items with a different label. The seed prints (9) as
    ``[m + d(x_i', y_j') - d(y_i', y_k')]_+``; we read that as a typo for the text-text
    condition of its eq. (4), ``d(y_i, y_j) + m < d(y_i, y_k)``.

    For each (anchor, positive) pair only the ``top_k`` largest hinge terms over negatives are
    summed (Wang et al.'s top-K most violating negatives in the mini-batch); the seed's "we
    sampled 10 false pairs for every true pair" gives ``top_k=10``. ``top_k=None`` sums all.

    Defaults: ``margin=0.05`` ("Our margin for the margin loss was 0.05"), ``lambda1=1`` and
    ``lambda2=1`` (the bi-directional model; "To run the model with a uni-directional loss, we
    simply set λ1 = 1, and λ2 = 0"). The seed gives no values for ``lambda3``/``lambda4`` and its
    best model (Table 1) lists neighbourhood *sampling*, not the constraints, so both default to
    0 (off); set them, together with ``labels``, to turn the constraints on.

    ``reduction="sum"`` is the literal sum of the formula; ``"mean"`` divides each of the four
    terms by its number of (anchor, positive) pairs, so the scale does not grow with the batch.
    """

    def __init__(
        self,
        *,
        margin: float = 0.05,
        lambda1: float = 1.0,
        lambda2: float = 1.0,
        lambda3: float = 0.0,
        lambda4: float = 0.0,
        top_k: int | None = 10,
        normalize: bool = True,
        reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ParameterError(f"margin must be >= 0, got {margin}")
        for name, value in (
            ("lambda1", lambda1),
            ("lambda2", lambda2),
            ("lambda3", lambda3),
            ("lambda4", lambda4),
        ):
            if value < 0:
                raise ParameterError(f"{name} must be >= 0, got {value}")
        if top_k is not None and top_k < 1:
            raise ParameterError(f"top_k must be >= 1 or None, got {top_k}")
        if reduction not in ("sum", "mean"):
            raise ParameterError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.margin = margin
        self.lambdas = (lambda1, lambda2, lambda3, lambda4)
        self.top_k = top_k
        self.normalize = normalize
        self.reduction = reduction

    def _ranking_term(
        self, dist: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """``sum_{(i,j) in pos} topK_k [m + dist[i, j] - dist[i, k]]_+`` over ``k`` with ``neg[i, k]``.

        ``dist`` is (anchors, candidates); ``pos`` and ``neg`` are bool masks of the same shape.
        """
        anchors, positives = pos.nonzero(as_tuple=True)
        if anchors.numel() == 0:
            return dist.new_zeros(())
        hinge = F.relu(self.margin + dist[anchors, positives][:, None] - dist[anchors])
        hinge = hinge * neg[anchors].to(hinge.dtype)
        if self.top_k is not None and self.top_k < hinge.shape[1]:
            hinge = hinge.topk(self.top_k, dim=1).values
        total = hinge.sum()
        return total / anchors.numel() if self.reduction == "mean" else total

    def forward(
        self,
        audio: torch.Tensor,
        text: torch.Tensor,
        *,
        positive_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of a batch of pairs ``(audio[i], text[i])``.

        Parameters
        ----------
        audio, text : (B, D) float tensors (``x`` and ``y`` of the seed).
        positive_mask : (B, B) bool, optional
            ``positive_mask[i, j]``: text ``j`` matches audio ``i``; default the identity. For
            album-level matching pass ``labels[:, None] == labels[None, :]``.
        labels : (B,) int tensor, optional
            Neighbourhood label of pair ``i`` (e.g. album id); needed when ``lambda3`` or
            ``lambda4`` is non-zero.
        """
        _check_same_shape(("audio", "text"), (audio, text))
        batch = audio.shape[0]
        if self.normalize:
            audio = F.normalize(audio, dim=-1)
            text = F.normalize(text, dim=-1)
        if positive_mask is None:
            pos = torch.eye(batch, dtype=torch.bool, device=audio.device)
        else:
            pos = _check_square_mask("positive_mask", positive_mask, batch)
        l1, l2, l3, l4 = self.lambdas
        d_xy = euclidean_distance_matrix(audio, text)  # d_xy[i, j] = d(x_i, y_j)
        loss = l1 * self._ranking_term(d_xy, pos, ~pos)
        loss = loss + l2 * self._ranking_term(d_xy.T, pos.T, ~pos.T)
        if l3 == 0 and l4 == 0:
            return loss
        if labels is None:
            raise ParameterError("lambda3/lambda4 > 0 need labels (B,) for the neighbourhood terms")
        if not isinstance(labels, torch.Tensor) or labels.shape != (batch,):
            shape = (
                tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            )
            raise ParameterError(f"labels must be a tensor of shape ({batch},), got {shape}")
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(batch, dtype=torch.bool, device=audio.device)
        if l3:
            loss = loss + l3 * self._ranking_term(
                euclidean_distance_matrix(audio, audio), same & ~eye, ~same
            )
        if l4:
            loss = loss + l4 * self._ranking_term(
                euclidean_distance_matrix(text, text), same & ~eye, ~same
            )
        return loss


# --------------------------------------------------------------------------- classification


class ClassificationLoss(nn.Module):
    """Classification baseline: audio embeddings scored against class centroids.

    Seed ``ttmr-universal.md``: "the classification loss uses a randomly initialized centroid
    embedding without a text encoder. The classification based model uses the similarity
    between audio embeddings and centroid embeddings as a prediction score. The prediction of
    annotated pair becomes a positive score (maximize), and prediction of un-annotated pair
    becomes negative score (minimize)." The two-branch seed adds that Wang et al. and Elizalde
    et al. "use binary cross-entropy to try and match".

    Our reading: ``logits[b, c] = scale * sim(a_b, centroid_c)`` with ``sim`` the dot product
    (``normalize=False``, the default: the centroids are the weight rows of a bias-free linear
    head) or the cosine (``normalize=True``, then a ``scale`` around 10 gives the sigmoid room).
    ``mode="multilabel"`` (default; tags are multi-label) takes the mean binary cross-entropy
    over all (item, class) cells against a multi-hot ``targets`` (B, C); ``mode="multiclass"``
    takes softmax cross-entropy against class indices ``targets`` (B,).

    Centroids are learnable, initialised ``N(0, 1/D)``, when ``num_classes`` and ``dim`` are
    given; text-derived centroids (e.g. the text encoder's tag embeddings) can be passed to
    ``forward`` instead and then take precedence.
    """

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        dim: int | None = None,
        mode: Literal["multilabel", "multiclass"] = "multilabel",
        normalize: bool = False,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if mode not in ("multilabel", "multiclass"):
            raise ParameterError(f"mode must be 'multilabel' or 'multiclass', got {mode!r}")
        if (num_classes is None) != (dim is None):
            raise ParameterError(
                "give both num_classes and dim for learnable centroids, or neither"
            )
        if scale <= 0:
            raise ParameterError(f"scale must be > 0, got {scale}")
        self.centroids: nn.Parameter | None = None
        if num_classes is not None and dim is not None:
            if num_classes < 1 or dim < 1:
                raise ParameterError(f"num_classes and dim must be >= 1, got {num_classes}, {dim}")
            self.centroids = nn.Parameter(torch.randn(num_classes, dim) / math.sqrt(dim))
        self.mode = mode
        self.normalize = normalize
        self.scale = scale

    def logits(self, audio: torch.Tensor, centroids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C)`` prediction scores of ``audio`` (B, D) against ``centroids`` (C, D)."""
        _check_embeddings("audio", audio)
        if centroids is None:
            centroids = self.centroids
        if centroids is None:
            raise ParameterError(
                "no centroids: pass centroids (C, D) or build with num_classes and dim"
            )
        _check_embeddings("centroids", centroids)
        if centroids.shape[1] != audio.shape[1]:
            raise ParameterError(
                f"centroids have dimension {centroids.shape[1]} but audio has {audio.shape[1]}"
            )
        if self.normalize:
            audio = F.normalize(audio, dim=-1)
            centroids = F.normalize(centroids, dim=-1)
        return self.scale * (audio @ centroids.T)

    def forward(
        self,
        audio: torch.Tensor,
        targets: torch.Tensor,
        *,
        centroids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss of ``audio`` (B, D) given ``targets``: multi-hot (B, C) or class indices (B,)."""
        logits = self.logits(audio, centroids)
        batch, classes = logits.shape
        if not isinstance(targets, torch.Tensor):
            raise ParameterError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
        if self.mode == "multilabel":
            if targets.shape != (batch, classes):
                raise ParameterError(
                    f"multilabel targets must have shape ({batch}, {classes}), got {tuple(targets.shape)}"
                )
            return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
        if targets.shape != (batch,) or targets.is_floating_point():
            raise ParameterError(
                f"multiclass targets must be integer class indices of shape ({batch},), "
                f"got {tuple(targets.shape)} {targets.dtype}"
            )
        if bool(((targets < 0) | (targets >= classes)).any()):
            raise ParameterError(
                f"multiclass targets must lie in [0, {classes}), got {targets.tolist()}"
            )
        return F.cross_entropy(logits, targets.long())
