"""The LightningModule: one training step for every objective of the seeds.

Batches are lists of item indices; the module picks one cached window per item (a random crop,
as the seeds train), samples each item's text with the configured representation (tag, sentence
or stochastic), and applies the objective:

- ``infonce``: symmetric InfoNCE, duplicates in a batch (same item or same text) are positives;
- ``ranking``: the two-branch bidirectional ranking loss, neighbourhood labels from the manifest;
- ``triplet``: (tag, positive item, negative item) triplets from the configured sampler;
- ``classification``: multi-label classification against the tags' text embeddings as centroids.

Validation embeds every valid track (mean of its windows) and ranks it for each caption.
"""

from __future__ import annotations

import hashlib
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from melodex.evaluate.metrics import evaluate_retrieval
from melodex.lab.config import TrainConfig
from melodex.lab.data import SplitData, audio_is_frozen
from melodex.lab.distributed import global_infonce
from melodex.lab.losses import (
    BidirectionalRankingLoss,
    ClassificationLoss,
    InfoNCELoss,
    TripletMarginLoss,
)
from melodex.lab.sampling import positive_mask
from melodex.models.dual import DualEncoder
from melodex.text import TextSampler


def text_is_frozen(net: DualEncoder) -> bool:
    return not any(p.requires_grad for p in net.text_encoder.parameters())


class JointTraining(L.LightningModule):
    def __init__(
        self, config: TrainConfig, net: DualEncoder, splits: dict[str, SplitData], tags: list[str]
    ):
        super().__init__()
        self.config = config
        self.net = net
        self.splits = splits
        self.tags = tags
        self.audio_frozen = audio_is_frozen(net)
        self.text_frozen = text_is_frozen(net)
        self._text_cache: dict[str, Tensor] = {}
        self._rng = np.random.default_rng(config.seed)
        self.triplet_sampler: Any = None  # set by the trainer: its stats go into the run
        params = dict(config.objective.params)
        loss = config.objective.loss
        if loss == "infonce":
            self.loss_fn: torch.nn.Module = InfoNCELoss(**params)
        elif loss == "ranking":
            self.loss_fn = BidirectionalRankingLoss(**params)
        elif loss == "triplet":
            self.loss_fn = TripletMarginLoss(**params)
        else:
            self.loss_fn = ClassificationLoss(
                **{"mode": "multilabel", "normalize": True, "scale": 10.0, **params}
            )
        train = splits["train"]
        self.train_labels = train.labels(config.objective.neighbourhood)
        tag_index = {t: i for i, t in enumerate(tags)}
        self.item_tags = np.zeros((len(train.items), max(len(tags), 1)), np.int8)
        for i, item in enumerate(train.items):
            for t in item.get("tags", []):
                if t in tag_index:
                    self.item_tags[i, tag_index[t]] = 1
        self.sampler_text = TextSampler(
            config.data.text_mode,
            rng=np.random.default_rng(config.seed + 1),
            sentence_kinds=tuple(config.data.sentence_kinds),
        )
        self.save_hyperparameters({"config": config.to_dict()})

    # -- features ------------------------------------------------------------------------
    def _text_features(self, texts: list[str]) -> Tensor:
        if not self.text_frozen:
            return self.net.text_features(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            with torch.no_grad():
                feats = self.net.text_features(missing)
            for t, f in zip(missing, feats, strict=True):
                self._text_cache[t] = f
            if len(self._text_cache) > 200_000:  # stochastic texts: keep memory bounded
                self._text_cache.clear()
        return torch.stack([self._text_cache[t] for t in texts])

    def warm_text_cache(self, *, batch_size: int = 128) -> int:
        """Encode every fixed text once (tags, sentence-kind texts, evaluation captions) so a
        frozen text encoder costs nothing per step; returns how many texts were encoded.
        Stochastic subsets are still encoded as they are drawn."""
        if not self.text_frozen:
            return 0
        kinds = set(self.config.data.sentence_kinds) | {"caption"}
        texts = list(self.tags)
        for split in self.splits.values():
            for item in split.items:
                texts.extend(t["text"] for t in item["texts"] if t["kind"] in kinds)
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        for start in range(0, len(todo), batch_size):
            self._text_features(todo[start : start + batch_size])
        return len(todo)

    def text_embeddings(self, texts: list[str]) -> Tensor:
        return self.net.embed_text_features(self._text_features(texts))

    def _audio_windows(self, split: SplitData, indices: list[int]) -> Tensor:
        """One random cached window per item (the seeds' random-crop training)."""
        offsets = split.features.offsets
        rows = [int(self._rng.integers(offsets[i], offsets[i + 1])) for i in indices]
        return torch.from_numpy(np.asarray(split.features.data[rows], dtype=np.float32))

    def audio_embeddings(self, x: Tensor) -> Tensor:
        feats = x if self.audio_frozen else self.net.audio_features(x)
        return self.net.embed_audio_features(feats)

    def track_embeddings(self, split: SplitData, indices: list[int], *, chunk: int = 256) -> Tensor:
        """Whole-track vectors: every cached window through the network, mean of the raw head
        outputs, then L2-normalised (the same pooling the library uses)."""
        offsets = split.features.offsets
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
        owners = np.concatenate(
            [np.full(offsets[i + 1] - offsets[i], k) for k, i in enumerate(indices)]
        )
        outs = []
        for start in range(0, len(rows), chunk):
            x = torch.from_numpy(
                np.asarray(split.features.data[rows[start : start + chunk]], np.float32)
            )
            feats = x if self.audio_frozen else self.net.audio_features(x)
            outs.append(self.net.audio_head.net(feats))
        raw = torch.cat(outs)
        pooled = torch.zeros(len(indices), raw.shape[1]).index_add_(
            0, torch.from_numpy(owners), raw
        )
        counts = torch.from_numpy(np.bincount(owners, minlength=len(indices))).clamp(min=1)
        return torch.nn.functional.normalize(pooled / counts[:, None], dim=-1)

    # -- training ------------------------------------------------------------------------
    def training_step(self, batch: list[Any] | Tensor, batch_idx: int) -> Tensor:
        train = self.splits["train"]
        loss_name = self.config.objective.loss
        if loss_name == "triplet":
            loss = self._triplet_step(train, batch)
            self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
            return loss
        indices = [int(i) for i in (batch.tolist() if isinstance(batch, Tensor) else batch)]
        audio = self.audio_embeddings(self._audio_windows(train, indices))
        if loss_name == "classification":
            targets = torch.from_numpy(self.item_tags[indices].astype(np.float32))
            centroids = self.text_embeddings(self.tags)
            loss = backward = self.loss_fn(audio, targets, centroids=centroids)
        else:
            texts = [self.sampler_text.sample(train.items[i]) for i in indices]
            text = self.text_embeddings(texts)
            if loss_name == "infonce":
                # the global batch: every rank's pairs are negatives of every other's
                loss, backward = global_infonce(
                    self.loss_fn, audio, text, indices, [_text_key(t) for t in texts]
                )
            else:
                mask = positive_mask([train.ids[i] for i in indices], texts)
                labels = torch.tensor([hash(self.train_labels[i]) % (2**31) for i in indices])
                loss = backward = self.loss_fn(audio, text, positive_mask=mask, labels=labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(indices))
        return backward

    def triplet_weighting(self) -> dict[str, np.ndarray]:
        """Current item and tag embeddings, for balanced-weighted negatives (once per epoch)."""
        train = self.splits["train"]
        with torch.no_grad():
            items = self.track_embeddings(train, list(range(len(train.items))))
            tags = self.text_embeddings(self.tags)
        return {"item_embeddings": items.numpy(), "tag_embeddings": tags.numpy()}

    def _triplet_step(self, train: SplitData, batch: list[Any]) -> Tensor:
        trip = np.asarray([tuple(t) for t in batch], dtype=np.int64).reshape(-1, 3)
        anchors = self.text_embeddings([self.tags[t] for t in trip[:, 0]])
        pos = self.audio_embeddings(self._audio_windows(train, trip[:, 1].tolist()))
        neg = self.audio_embeddings(self._audio_windows(train, trip[:, 2].tolist()))
        return self.loss_fn(anchors, pos, neg)

    # -- validation ----------------------------------------------------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:  # all work at epoch end
        return None

    def on_validation_epoch_end(self) -> None:
        split = self.splits.get("valid")
        if split is None:
            return
        metrics = retrieval_metrics(self, split, kinds=tuple(self.config.data.sentence_kinds))
        for name in ("R@1", "R@5", "R@10", "median_rank"):
            if name in metrics:
                self.log(
                    f"val/{name}", float(metrics[name]), prog_bar=name == "R@10", sync_dist=True
                )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            params, lr=self.config.optim.lr, weight_decay=self.config.optim.weight_decay
        )


def _text_key(text: str) -> int:
    """A stable 63-bit key of a text (Python's hash differs between processes)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


@torch.no_grad()
def retrieval_metrics(
    module: JointTraining, split: SplitData, *, kinds: tuple[str, ...] = ("caption",)
) -> dict[str, float]:
    """Caption -> track retrieval on a split (whole-track pooling: mean of cached windows)."""
    was_training = module.net.training
    module.net.eval()
    try:
        audio = module.track_embeddings(split, list(range(len(split.items))))
        queries = split.captions(kinds) or split.captions(("caption", "tag"))
        if not queries:
            return {}
        owners = np.array([i for i, _ in queries])
        text = module.text_embeddings([t for _, t in queries])
        scores = (text @ audio.T).numpy()
        relevance = owners[:, None] == np.arange(len(split.items))[None, :]
        return evaluate_retrieval(scores, relevance, ks=(1, 5, 10))
    finally:
        module.net.train(was_training)
