"""Data parallelism for the Lab: batches sharded per rank and per epoch, features gathered
across ranks with their gradients.

Every rank builds the same samplers from the same seed. Each epoch, a sampler plans the whole
epoch from ``numpy.random.default_rng([seed, epoch])`` (the same plan on every rank, and the
same plan again when a run resumes at that epoch), then keeps only this rank's share:

- :class:`ShardedBatchSampler` wraps a planned batch sampler (unique, neighbourhood): batches are
  dealt round-robin, so each rank's batch keeps the sampler's guarantees (no duplicate track, a
  neighbour for every item). When the batch count does not divide by the world size, the first
  batches are dealt again (as ``DistributedSampler`` pads), so every rank runs the same number
  of steps and every item is seen.
- :class:`TripletBatchSampler` plans ``steps`` global batches of ``batch_size * world``
  triplets (random, balanced or balanced-weighted) and gives each rank one contiguous slice.

:func:`gather_with_grad` is open_clip's ``gather_features`` pattern: ``all_gather`` every rank's
features, then put the local, gradient-carrying tensor back in its own slot, so the loss sees
the global batch and gradients flow to the local encoder. ``batch_size`` is per device; the
global batch is ``batch_size * devices * num_nodes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from melodex.errors import ParameterError
from melodex.lab.sampling import distance_weights, positive_mask, sample_triplets

__all__ = [
    "ShardedBatchSampler",
    "TripletBatchSampler",
    "gather_with_grad",
    "global_infonce",
    "negative_stats",
    "rank_and_world",
]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (``(B_r, ...)``, sizes may differ per rank) of every rank in rank order.

    Other ranks' rows carry no gradient; this rank's rows are ``x`` itself, so the loss on the
    gathered batch back-propagates into the local encoder. Without a process group: ``x``.
    """
    rank, world = rank_and_world()
    if world == 1:
        return x
    size = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = x.detach()
    if x.shape[0] < longest:
        pad = torch.zeros((longest - x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded = torch.cat([padded, pad])
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    pieces = [p[:n] for p, n in zip(parts, counts, strict=True)]
    pieces[rank] = x
    return torch.cat(pieces)


def global_infonce(
    loss_fn: Callable[..., Tensor],
    audio: Tensor,
    text: Tensor,
    item_keys: list[int],
    text_keys: list[int],
) -> tuple[Tensor, Tensor]:
    """InfoNCE over the global batch: ``(loss to log, loss to back-propagate)``.

    Every rank's pairs are gathered (:func:`gather_with_grad`); pairs sharing a track or a
    caption, on any rank, are positives. Each rank's loss only reaches its own rows, and DDP
    averages gradients over ranks, so the back-propagated loss is scaled by the world size:
    the summed update is then the single-process gradient on the same global batch.
    """
    world = rank_and_world()[1]
    audio_all, text_all = gather_with_grad(audio), gather_with_grad(text)
    items = gather_with_grad(torch.tensor(item_keys, dtype=torch.long)).tolist()
    texts = gather_with_grad(torch.tensor(text_keys, dtype=torch.long)).tolist()
    loss = loss_fn(audio_all, text_all, positive_mask=positive_mask(items, texts))
    return loss, loss * world if world > 1 else loss


class _EpochAware:
    """Shared rank/epoch handling. Lightning calls ``batch_sampler.sampler.set_epoch``: the
    sampler is its own ``sampler`` so that call reaches it."""

    def __init__(self, *, seed: int, rank: int | None, world_size: int | None) -> None:
        self.seed = int(seed)
        self._rank, self._world = rank, world_size
        self.epoch = 0
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def rank(self) -> int:
        return rank_and_world()[0] if self._rank is None else self._rank

    @property
    def world_size(self) -> int:
        return rank_and_world()[1] if self._world is None else self._world

    def epoch_rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def _check_rank(self) -> tuple[int, int]:
        rank, world = self.rank, self.world_size
        if world < 1 or not 0 <= rank < world:
            raise ParameterError(f"rank {rank} is outside a world of {world}")
        return rank, world


class ShardedBatchSampler(_EpochAware):
    """This rank's batches of a planned batch sampler (see the module docstring).

    ``base`` is a :class:`~melodex.lab.sampling.UniqueBatchSampler` or
    :class:`~melodex.lab.sampling.NeighbourhoodBatchSampler`; its ``rng`` is replaced each epoch.
    ``rank``/``world_size`` default to the process group's, read when the epoch is planned.
    """

    def __init__(
        self,
        base: Any,
        *,
        seed: int,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size)
        self.base = base
        self._planned: tuple[int, list[list[int]]] | None = None

    def global_plan(self) -> list[list[int]]:
        """Every rank's batches of this epoch, in dealing order (the same on every rank)."""
        if self._planned is None or self._planned[0] != self.epoch:
            self.base.rng = self.epoch_rng()
            self.base._plan = None
            self._planned = (self.epoch, self.base._make_plan())
        return self._planned[1]

    def shard(self) -> list[list[int]]:
        rank, world = self._check_rank()
        plan = self.global_plan()
        steps = -(-len(plan) // world)  # ceil: short ranks are padded from the start
        dealt = [plan[(rank + world * s) % len(plan)] for s in range(steps)]
        return dealt

    def __len__(self) -> int:
        return len(self.shard())

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.shard()


class TripletBatchSampler(_EpochAware):
    """``steps`` batches of ``(tag, positive, negative)`` triplets for this rank per epoch.

    The epoch's triplets are drawn at once with :func:`~melodex.lab.sampling.sample_triplets`
    (``steps * batch_size * world`` of them, from the epoch's generator), then cut into global
    batches and sliced per rank. ``weighting`` returns the current ``item_embeddings`` and
    ``tag_embeddings`` (needed by balanced-weighted sampling; optional for the others); it is
    called once per epoch, when the first batch is drawn, and then ``stats`` keeps what
    :func:`negative_stats` measured on that epoch's negatives.
    """

    def __init__(
        self,
        item_tags: np.ndarray,
        *,
        strategy: str,
        batch_size: int,
        steps: int,
        seed: int,
        weighting: Callable[[], dict[str, np.ndarray]] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size)
        if batch_size < 1 or steps < 1:
            raise ParameterError(f"batch_size and steps must be >= 1, got {batch_size}, {steps}")
        self.item_tags = np.asarray(item_tags)
        self.strategy = strategy
        self.batch_size = batch_size
        self.steps = steps
        self.weighting = weighting
        self.stats: list[dict[str, float]] = []

    def global_triplets(self) -> np.ndarray:
        """``(steps * batch_size * world, 3)`` triplets of this epoch, the same on every rank."""
        embeddings = self.weighting() if self.weighting is not None else None
        kwargs: dict[str, Any] = {}
        if self.strategy == "balanced_weighted":
            if embeddings is None:
                raise ParameterError("balanced_weighted sampling needs a weighting function")
            kwargs = embeddings
        n = self.steps * self.batch_size * self.world_size
        trip = sample_triplets(
            self.item_tags,
            n_triplets=n,
            rng=self.epoch_rng(),
            strategy=self.strategy,  # type: ignore[arg-type]
            **kwargs,
        )
        out = np.stack([trip.tags, trip.positives, trip.negatives], axis=1)
        if embeddings is not None:  # measured for every strategy: compare them
            self.stats.append(
                {"epoch": float(self.epoch), **negative_stats(self.item_tags, out, **embeddings)}
            )
        return out

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        rank, world = self._check_rank()
        triplets = self.global_triplets()
        b = self.batch_size
        for step in range(self.steps):
            start = (step * world + rank) * b
            yield [tuple(int(v) for v in row) for row in triplets[start : start + b]]


def negative_stats(
    item_tags: np.ndarray,
    triplets: np.ndarray,
    *,
    item_embeddings: np.ndarray,
    tag_embeddings: np.ndarray,
) -> dict[str, float]:
    """What the sampled negatives look like: their distance to the anchor tag against the
    positive's; how many share a tag with the positive (likely false negatives); how many
    distinct negatives each tag drew, and the effective number ``1 / sum p^2`` of negatives the
    weighted distribution gives a tag (1 means it always picks the same item)."""
    items = _unit(np.asarray(item_embeddings, np.float64))
    tags = _unit(np.asarray(tag_embeddings, np.float64))
    t, p, n = triplets[:, 0], triplets[:, 1], triplets[:, 2]
    d_pos = np.sqrt(np.maximum(2 - 2 * np.sum(items[p] * tags[t], axis=1), 0))
    d_neg = np.sqrt(np.maximum(2 - 2 * np.sum(items[n] * tags[t], axis=1), 0))
    matrix = np.asarray(item_tags).astype(bool)
    shared = (matrix[p] & matrix[n]).sum(axis=1)
    distinct, effective = [], []
    for tag in np.unique(t):
        distinct.append(len(np.unique(n[t == tag])))
        candidates = np.flatnonzero(~matrix[:, tag])
        d = np.sqrt(np.maximum(2 - 2 * items[candidates] @ tags[tag], 0))
        w = distance_weights(d, dim=items.shape[1])
        if w.sum() > 0:
            q = w / w.sum()
            effective.append(1.0 / float(np.sum(q * q)))
        else:
            effective.append(float(len(candidates)))  # uniform fallback
    return {
        "neg_distance_mean": float(d_neg.mean()),
        "pos_distance_mean": float(d_pos.mean()),
        "neg_closer_than_pos": float((d_neg < d_pos).mean()),
        "neg_shares_positive_tag": float((shared > 0).mean()),
        "distinct_negatives_per_tag": float(np.median(distinct)),
        "effective_negatives_per_tag": float(np.median(effective)),
        "candidates_per_tag": float(np.median([(~matrix[:, g]).sum() for g in np.unique(t)])),
        # mean cosine between distinct items: 1 means every item sits at one point (collapse)
        "item_cosine_mean": float(
            ((items @ items.T).sum() - len(items)) / max(len(items) * (len(items) - 1), 1)
        ),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
