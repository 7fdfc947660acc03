"""Samplers of the seed methods: triplets over an item-tag matrix, neighbourhood and unique batches.

All randomness comes from a ``numpy.random.Generator`` passed in as ``rng``; the same generator
state gives the same samples.

- :func:`sample_triplets` -- ``(tag, positive item, negative item)`` triplets, ``random``,
  ``balanced`` or ``balanced_weighted`` (tag-based metric learning, Won et al.).
- :func:`sample_negative_tags` -- a tag an item does not carry, for the reverse triplet direction.
- :func:`distance_weights` -- the "sampling matters" (Wu et al. 2017) negative weights.
- :class:`NeighbourhoodBatchSampler` -- batches in which every item has a same-label neighbour
  (two-branch seed's neighbourhood sampling).
- :class:`UniqueBatchSampler` and :func:`positive_mask` -- contrastive batches without duplicate
  tracks or captions, or the mask that makes duplicates positives for InfoNCE.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Literal, NamedTuple

import numpy as np
import torch

from melodex.errors import ParameterError

__all__ = [
    "NeighbourhoodBatchSampler",
    "TripletIndices",
    "UniqueBatchSampler",
    "distance_weights",
    "positive_mask",
    "sample_negative_tags",
    "sample_triplets",
]

Strategy = Literal["random", "balanced", "balanced_weighted"]


class TripletIndices(NamedTuple):
    """Indices of sampled triplets, each an ``int64`` array of length ``n_triplets``."""

    tags: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray


# --------------------------------------------------------------------------- helpers


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _as_item_tags(item_tags: object) -> np.ndarray:
    matrix = np.asarray(item_tags)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ParameterError(
            f"item_tags must be a non-empty (items, tags) matrix, got shape {matrix.shape}"
        )
    if not np.isin(matrix, (0, 1)).all():
        raise ParameterError("item_tags must hold only 0/1 or False/True")
    return matrix.astype(bool)


def _as_array(name: str, x: object, shape0: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != shape0:
        raise ParameterError(f"{name} must have shape ({shape0}, D), got {arr.shape}")
    return arr


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- distance weighting


def distance_weights(
    distances: np.ndarray,
    *,
    dim: int,
    cutoff: float = 0.5,
    nonzero_loss_cutoff: float | None = 1.4,
) -> np.ndarray:
    """Unnormalised weights ``1 / q(d)`` of distance-weighted negative sampling.

    Wu et al. 2017, "Sampling matters in deep embedding learning" (the "weighted sampling
    method (reference)" of ``tag-based-metric-learning.md``): for points spread uniformly on the
    unit sphere in ``dim`` dimensions, pairwise Euclidean distances have density::

        q(d) ∝ d^(dim-2) * (1 - d^2/4)^((dim-3)/2),   0 < d < 2

    and sampling a negative with probability ∝ 1/q(d) makes the sampled distances roughly
    uniform, so hard, semi-hard and easy negatives all appear. As in Wu et al.'s reference
    code, distances are clipped from below at ``cutoff`` (0.5; this caps the weight of very
    close, noisy negatives) and negatives farther than ``nonzero_loss_cutoff`` (1.4) get weight
    0 (they would give no loss). Computed in log space and scaled so the largest weight is 1.
    These two defaults are Wu et al.'s, not the seed's (the seed gives none).
    """
    if dim < 2:
        raise ParameterError(f"dim must be >= 2, got {dim}")
    d = np.clip(np.asarray(distances, dtype=np.float64), cutoff, 2.0)
    log_q = (dim - 2.0) * np.log(d) + 0.5 * (dim - 3.0) * np.log(
        np.maximum(1.0 - 0.25 * d * d, 1e-8)
    )
    log_w = -log_q
    log_w = log_w - log_w.max() if log_w.size else log_w
    weights = np.exp(log_w)
    if nonzero_loss_cutoff is not None:
        weights = np.where(np.asarray(distances) < nonzero_loss_cutoff, weights, 0.0)
    return weights


# --------------------------------------------------------------------------- triplets


def sample_triplets(
    item_tags: np.ndarray,
    *,
    n_triplets: int,
    rng: np.random.Generator,
    strategy: Strategy,
    item_embeddings: np.ndarray | torch.Tensor | None = None,
    tag_embeddings: np.ndarray | torch.Tensor | None = None,
    cutoff: float = 0.5,
    nonzero_loss_cutoff: float | None = 1.4,
) -> TripletIndices:
    """Sample ``(tag, positive item, negative item)`` triplets from a multi-label matrix.

    Seed ``tag-based-metric-learning.md``, "1. Sampling matters": "Our baseline is random
    sampling. But with random sampling, minor tags have less chance to be sampled during the
    training. To alleviate this, we uniformly select tags first, then sample positive and
    negative items (balanced sampling). Further, we added the weighted sampling method
    (reference) to sample hard, semi-hard, and soft negative examples efficiently. [...]
    balanced-weighted sampling showed the best result."

    Strategies (positives always carry the tag, negatives never do):

    - ``"random"``: an (item, tag) annotation is drawn uniformly, so a tag appears in
      proportion to its number of items; the negative is uniform over items without the tag.
    - ``"balanced"``: a tag uniformly, then a positive uniformly among its items and a negative
      uniformly among the others.
    - ``"balanced_weighted"``: as balanced, but the negative is drawn with probability
      ∝ :func:`distance_weights` of its distance to the anchor tag, both embeddings
      L2-normalised (``d = sqrt(2 - 2 cos)``). Needs ``item_embeddings`` (items, D) and
      ``tag_embeddings`` (tags, D), the current model's outputs. When no negative of a tag lies
      within ``nonzero_loss_cutoff`` the draw falls back to uniform.

    Tags with no item, or carried by every item, cannot form a triplet and are never drawn.
    """
    _check_rng(rng)
    matrix = _as_item_tags(item_tags)
    if n_triplets < 0:
        raise ParameterError(f"n_triplets must be >= 0, got {n_triplets}")
    if strategy not in ("random", "balanced", "balanced_weighted"):
        raise ParameterError(
            f"strategy must be 'random', 'balanced' or 'balanced_weighted', got {strategy!r}"
        )
    n_items, n_tags = matrix.shape
    counts = matrix.sum(axis=0)
    usable = (counts > 0) & (counts < n_items)
    if not usable.any():
        raise ParameterError("no tag has both a positive and a negative item")

    if strategy == "random":
        items_of_pairs, tags_of_pairs = np.nonzero(matrix & usable[None, :])
        pick = rng.integers(0, items_of_pairs.size, size=n_triplets)
        tags, positives = tags_of_pairs[pick], items_of_pairs[pick]
    else:
        tags = rng.choice(np.flatnonzero(usable), size=n_triplets)
        positives = np.empty(n_triplets, dtype=np.int64)

    weighted = strategy == "balanced_weighted"
    if weighted:
        if item_embeddings is None or tag_embeddings is None:
            raise ParameterError(
                "strategy='balanced_weighted' needs item_embeddings and tag_embeddings"
            )
        items_unit = _unit(_as_array("item_embeddings", item_embeddings, n_items))
        tags_unit = _unit(_as_array("tag_embeddings", tag_embeddings, n_tags))
        if items_unit.shape[1] != tags_unit.shape[1]:
            raise ParameterError(
                f"item_embeddings have dimension {items_unit.shape[1]} "
                f"but tag_embeddings have {tags_unit.shape[1]}"
            )

    negatives = np.empty(n_triplets, dtype=np.int64)
    for tag in np.unique(tags):
        slots = np.flatnonzero(tags == tag)
        carriers = matrix[:, tag]
        if strategy != "random":
            positives[slots] = rng.choice(np.flatnonzero(carriers), size=slots.size)
        candidates = np.flatnonzero(~carriers)
        p = None
        if weighted:
            cos = np.clip(items_unit[candidates] @ tags_unit[tag], -1.0, 1.0)
            weights = distance_weights(
                np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0)),
                dim=items_unit.shape[1],
                cutoff=cutoff,
                nonzero_loss_cutoff=nonzero_loss_cutoff,
            )
            if weights.sum() > 0:
                p = weights / weights.sum()
        negatives[slots] = rng.choice(candidates, size=slots.size, p=p)
    return TripletIndices(tags.astype(np.int64), positives.astype(np.int64), negatives)


def sample_negative_tags(
    item_tags: np.ndarray, items: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """For each index in ``items``, a tag drawn uniformly among those the item does not carry.

    The negative of the reverse triplet direction (item anchor, its tag positive), see
    :class:`melodex.lab.losses.TripletMarginLoss` with ``direction="item_to_tag"``.
    """
    _check_rng(rng)
    matrix = _as_item_tags(item_tags)
    items = np.asarray(items, dtype=np.int64)
    if items.ndim != 1 or (items.size and (items.min() < 0 or items.max() >= matrix.shape[0])):
        raise ParameterError(f"items must be a 1-D array of indices below {matrix.shape[0]}")
    out = np.empty(items.size, dtype=np.int64)
    for item in np.unique(items):
        free = np.flatnonzero(~matrix[item])
        if free.size == 0:
            raise ParameterError(f"item {item} carries every tag, so it has no negative tag")
        slots = np.flatnonzero(items == item)
        out[slots] = rng.choice(free, size=slots.size)
    return out


# --------------------------------------------------------------------------- batch samplers


class _PlannedBatchSampler:
    """Shared machinery: an epoch's batches are planned once, so ``len`` matches ``iter``.

    ``len(sampler)`` plans the next epoch (if not planned yet) and counts its batches;
    iterating consumes that plan, and the epoch after draws a new one from ``rng``.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        _check_rng(rng)
        self.rng = rng
        self._plan: list[list[int]] | None = None

    def _make_plan(self) -> list[list[int]]:
        raise NotImplementedError

    def __len__(self) -> int:
        if self._plan is None:
            self._plan = self._make_plan()
        return len(self._plan)

    def __iter__(self) -> Iterator[list[int]]:
        plan = self._plan if self._plan is not None else self._make_plan()
        self._plan = None
        yield from plan


class NeighbourhoodBatchSampler(_PlannedBatchSampler):
    """Batches in which every item has at least one neighbour sharing its label.

    Seed ``two-branch-ranking-mard.md``, section 6.2: "In neighborhood sampling, we make sure
    for each audio feature in a batch, that there is another audio feature from the same album,
    and for each review, there is another review reviewing the same album." Table 1: neighbour
    sampling gave the best model.

    ``labels[i]`` is the neighbourhood (e.g. album) of pair ``i``. Each epoch, every label's
    items are shuffled and cut into groups of ``group_size`` (an odd remainder joins the last
    group, so groups hold ``group_size`` to ``2 * group_size - 1`` items); the groups are
    shuffled and packed whole into batches of at most ``batch_size``. A group that does not
    fit closes the batch, so batches hold between ``batch_size - 2 * group_size + 2`` and
    ``batch_size`` items (the last may be smaller). Labels with fewer than ``group_size`` items
    cannot have a neighbour and are left out. Use with ``DataLoader(batch_sampler=...)``.
    """

    def __init__(
        self,
        labels: Sequence[Hashable] | np.ndarray,
        *,
        batch_size: int,
        rng: np.random.Generator,
        group_size: int = 2,
    ) -> None:
        super().__init__(rng)
        if group_size < 2:
            raise ParameterError(f"group_size must be >= 2, got {group_size}")
        if batch_size < 2 * group_size - 1:
            raise ParameterError(
                f"batch_size={batch_size} is too small for groups of up to {2 * group_size - 1}"
            )
        by_label: dict[Hashable, list[int]] = {}
        for index, label in enumerate(np.asarray(labels).tolist()):
            by_label.setdefault(label, []).append(index)
        self.groups_by_label = [
            np.asarray(members) for members in by_label.values() if len(members) >= group_size
        ]
        if not self.groups_by_label:
            raise ParameterError(
                f"no label has {group_size} or more items, so no item has a neighbour"
            )
        self.batch_size = batch_size
        self.group_size = group_size

    def _make_plan(self) -> list[list[int]]:
        groups: list[list[int]] = []
        for members in self.groups_by_label:
            shuffled = self.rng.permutation(members).tolist()
            n_groups = len(shuffled) // self.group_size
            cuts = [
                shuffled[g * self.group_size : (g + 1) * self.group_size] for g in range(n_groups)
            ]
            cuts[-1].extend(shuffled[n_groups * self.group_size :])
            groups.extend(cuts)
        batches: list[list[int]] = []
        current: list[int] = []
        for g in self.rng.permutation(len(groups)):
            group = groups[g]
            if len(current) + len(group) > self.batch_size:
                batches.append(current)
                current = []
            current.extend(group)
        if current:
            batches.append(current)
        return batches


class UniqueBatchSampler(_PlannedBatchSampler):
    """Contrastive batches with no duplicate track and no duplicate caption.

    The choice documented here: this sampler *avoids* duplicates, so the identity is the right
    ``positive_mask`` for :class:`melodex.lab.losses.InfoNCELoss` and a duplicate can never be
    pushed away from itself as a false negative. When batches are built some other way, use
    :func:`positive_mask` instead to make duplicates positives.

    Each epoch the indices are shuffled and placed first-fit into open batches that hold none
    of their keys; a batch is emitted when it reaches ``batch_size``. Leftover partial batches
    come last (dropped with ``drop_last=True``). Use with ``DataLoader(batch_sampler=...)``.
    """

    def __init__(
        self,
        item_keys: Sequence[Hashable],
        *,
        batch_size: int,
        rng: np.random.Generator,
        text_keys: Sequence[Hashable] | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(rng)
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        self.item_keys = list(item_keys)
        if not self.item_keys:
            raise ParameterError("item_keys is empty")
        self.text_keys = None if text_keys is None else list(text_keys)
        if self.text_keys is not None and len(self.text_keys) != len(self.item_keys):
            raise ParameterError(
                f"text_keys has {len(self.text_keys)} entries but item_keys has {len(self.item_keys)}"
            )
        self.batch_size = batch_size
        self.drop_last = drop_last

    def _keys(self, index: int) -> tuple[tuple[str, Hashable], ...]:
        keys: tuple[tuple[str, Hashable], ...] = (("item", self.item_keys[index]),)
        if self.text_keys is not None:
            keys += (("text", self.text_keys[index]),)
        return keys

    def _make_plan(self) -> list[list[int]]:
        done: list[list[int]] = []
        open_batches: list[tuple[list[int], set[tuple[str, Hashable]]]] = []
        for index in self.rng.permutation(len(self.item_keys)).tolist():
            keys = self._keys(index)
            free = [s for s, (_, seen) in enumerate(open_batches) if not seen.intersection(keys)]
            if free:
                slot = free[0]
            else:
                open_batches.append(([], set()))
                slot = len(open_batches) - 1
            members, seen = open_batches[slot]
            members.append(index)
            seen.update(keys)
            if len(members) == self.batch_size:
                done.append(members)
                del open_batches[slot]
        if not self.drop_last:
            done.extend(members for members, _ in open_batches)
        return done


def positive_mask(
    item_keys: Sequence[Hashable], text_keys: Sequence[Hashable] | None = None
) -> torch.Tensor:
    """``(B, B)`` bool mask for :class:`melodex.lab.losses.InfoNCELoss` of a batch with duplicates.

    ``mask[i, j]`` is True when text ``j`` also describes audio ``i``: pairs ``i`` and ``j``
    share the track (``item_keys``) or the caption (``text_keys``). The diagonal is True.
    """
    items = list(item_keys)
    texts = None if text_keys is None else list(text_keys)
    if texts is not None and len(texts) != len(items):
        raise ParameterError(f"text_keys has {len(texts)} entries but item_keys has {len(items)}")
    mask = torch.tensor([[a == b for b in items] for a in items], dtype=torch.bool)
    if texts is not None:
        mask |= torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.bool)
    return mask.reshape(len(items), len(items))
