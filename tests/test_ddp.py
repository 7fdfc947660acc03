"""Data parallelism for real: samplers shard per rank and epoch, InfoNCE sees the global batch
with gradients, and a 2-process Lightning run (gloo, CPU) ends with the same weights on both
ranks, exports once, and resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.multiprocessing as mp

from melodex.data.manifest import write_manifest
from melodex.lab.config import config_from_dict
from melodex.lab.distributed import (
    ShardedBatchSampler,
    TripletBatchSampler,
    gather_with_grad,
)
from melodex.lab.losses import InfoNCELoss
from melodex.lab.sampling import NeighbourhoodBatchSampler, UniqueBatchSampler
from tests.ddp_workers import WORLD, features, free_port, item_and_text_keys, loss_worker

pytestmark = pytest.mark.heavy  # starts processes


def _item_tags(n: int = 40, tags: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = (rng.random((n, tags)) < 0.3).astype(np.int8)
    matrix[np.arange(n), np.arange(n) % tags] = 1
    return matrix


def _planned(kind: str, n: int, batch: int):
    rng = np.random.default_rng(0)
    if kind == "unique":
        return UniqueBatchSampler([f"t{i // 2}" for i in range(n)], batch_size=batch, rng=rng)
    return NeighbourhoodBatchSampler([i % 5 for i in range(n)], batch_size=batch, rng=rng)


@pytest.mark.parametrize("kind", ["unique", "neighbourhood"])
def test_batch_samplers_shard_disjoint_and_cover_each_epoch(kind: str) -> None:
    for n in (64, 61):  # 64: the batch count divides by 2; 61: the short rank is padded
        shards = [
            ShardedBatchSampler(_planned(kind, n, 8), seed=3, rank=r, world_size=WORLD)
            for r in range(WORLD)
        ]
        for epoch in (0, 1):
            for s in shards:
                s.set_epoch(epoch)
            seen = [[i for b in s for i in b] for s in shards]
            assert len(shards[0]) == len(shards[1])  # same step count: DDP cannot hang
            assert set(seen[0]) | set(seen[1]) == set(range(n))  # covers the epoch
            if len(shards[0].global_plan()) % WORLD == 0:
                assert not set(seen[0]) & set(seen[1])  # disjoint
                assert len(seen[0]) + len(seen[1]) == n
            if kind == "unique":  # a rank's batch keeps the sampler's guarantee
                for b in list(shards[0]):
                    keys = [f"t{i // 2}" for i in b]
                    assert len(keys) == len(set(keys))
        # another epoch, another plan; the same epoch again (a resumed run), the same plan
        a = ShardedBatchSampler(_planned(kind, n, 8), seed=3, rank=0, world_size=WORLD)
        b = ShardedBatchSampler(_planned(kind, n, 8), seed=3, rank=0, world_size=WORLD)
        b.set_epoch(1)
        assert list(a) != list(b)
        a.set_epoch(1)
        assert list(a) == list(b)


@pytest.mark.parametrize("strategy", ["random", "balanced", "balanced_weighted"])
def test_triplet_samplers_shard_per_rank_and_epoch(strategy: str) -> None:
    tags = _item_tags()
    rng = np.random.default_rng(1)
    emb = {"item_embeddings": rng.normal(size=(40, 8)), "tag_embeddings": rng.normal(size=(6, 8))}

    def make(rank: int, world: int) -> TripletBatchSampler:
        return TripletBatchSampler(
            tags,
            strategy=strategy,
            batch_size=4,
            steps=5,
            seed=7,
            weighting=lambda: emb,
            rank=rank,
            world_size=world,
        )

    for epoch in (0, 1):
        samplers = [make(r, WORLD) for r in range(WORLD)]
        for s in samplers:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in samplers]
        assert all(len(p) == 5 and all(len(b) == 4 for b in p) for p in per_rank)
        # step by step, rank 0 then rank 1 is exactly the epoch's global plan: disjoint slices
        interleaved = [t for step in zip(*per_rank, strict=True) for b in step for t in b]
        expected = [tuple(row) for row in samplers[0].global_triplets().tolist()]
        assert interleaved == expected
        assert per_rank[0] != per_rank[1]
        for t, p, n in interleaved:
            assert tags[p, t] == 1 and tags[n, t] == 0
    a, b = make(0, WORLD), make(0, WORLD)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_gather_without_a_process_group_is_the_identity() -> None:
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x


def test_infonce_on_two_ranks_of_8_equals_one_process_of_16(tmp_path: Path) -> None:
    mp.spawn(loss_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    audio_in, text, layer = features()
    items, texts = item_and_text_keys()
    from melodex.lab.sampling import positive_mask

    loss_fn = InfoNCELoss(temperature=0.1, learnable=False)
    single = loss_fn(layer(audio_in), text, positive_mask=positive_mask(items, texts))
    single.backward()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(got["loss"], single.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got["grad"], layer.weight.grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ a 2-process Lightning run


class _RankRecord(L.Callback):
    """Each rank writes the batches it trained on and its final weights."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.batches: list[list[int]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:  # noqa: ANN001
        self.batches.append([int(i) for i in batch])

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        rank = trainer.global_rank
        state = {k: v.clone() for k, v in module.net.trainable_state().items()}
        torch.save(
            {"state": state, "batches": self.batches, "epoch": trainer.current_epoch},
            Path(self.out) / f"rank{rank}-{trainer.current_epoch}.pt",
        )


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 one-second tones (no renders, no packaged models): a corpus for a fast 2-process run."""
    root = tmp_path_factory.mktemp("tones")
    (root / "audio").mkdir()
    rng = np.random.default_rng(0)
    items = []
    for i in range(40):
        freq = 110.0 * 2 ** ((i % 8) / 2)
        t = np.arange(16000) / 16000
        loud = 0.3 if i < 32 else 0.8  # valid/test louder: their features differ from train's
        y = loud * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)
        sf.write(root / "audio" / f"{i}.wav", y.astype(np.float32), 16000)
        word = ["low", "mid", "high", "bright"][i % 4]
        items.append(
            {
                "id": f"t{i}",
                "audio": f"audio/{i}.wav",
                "texts": [{"kind": "caption", "text": f"a {word} tone number {i % 8}"}],
                "tags": [word],
                "split": "train" if i < 32 else ("valid" if i < 36 else "test"),
                "album": f"a{i % 4}",
            }
        )
    return write_manifest(root / "manifest.jsonl", items)


def _config(corpus: Path, tmp: Path, epochs: int) -> dict:
    return {
        "name": "ddp",
        "output_dir": str(tmp / "runs"),
        "data": {
            "manifest": str(corpus),
            "cache_dir": str(tmp / "cache"),
            "max_windows": 1,
            "text_mode": "sentence",
        },
        "model": {
            "audio_encoder": {"name": "handcrafted_mlp", "params": {"hidden_dim": 16}},
            "text_encoder": {"name": "mean_word_embedding", "params": {"embedding_dim": 16}},
            "dim": 8,
            "head": "linear",
            "dropout": 0.0,
        },
        "objective": {"loss": "infonce", "params": {"temperature": 0.1}},
        "optim": {"lr": 0.01, "batch_size": 4, "epochs": epochs},
        "trainer": {"devices": WORLD, "strategy": "ddp_fork", "checkpoint_every_n_steps": 2},
    }


def test_two_process_training_shards_agrees_exports_once_and_resumes(
    tone_corpus: Path, tmp_path: Path
) -> None:
    from melodex.lab.train import train
    from melodex.models import load_model

    out = tmp_path / "ranks"
    out.mkdir()
    result = train(
        config_from_dict(_config(tone_corpus, tmp_path, 1)), callbacks=[_RankRecord(str(out))]
    )
    ranks = [torch.load(out / f"rank{r}-1.pt") for r in range(WORLD)]
    # 32 train items, 4 per batch and rank: 4 steps each, disjoint, together the whole epoch
    seen = [[i for b in r["batches"] for i in b] for r in ranks]
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 4
    assert not set(seen[0]) & set(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(32))
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=1e-6)
    assert set(result.metrics) == {"valid", "test"}
    exported = load_model(result.model_dir).net.trainable_state()
    assert exported.keys() == ranks[0]["state"].keys()
    assert json.loads((result.model_dir / "config.json").read_text())["architecture"]
    # the MFCC/roll-off/ZCR standardisation was fitted on the training split only
    from melodex.lab.data import prepare_splits
    from melodex.lab.train import build_network

    config = config_from_dict(_config(tone_corpus, tmp_path, 1))
    splits = prepare_splits(config, build_network(config))  # from the feature cache
    mean = load_model(result.model_dir).net.audio_encoder.feature_mean.numpy()
    train_rows = np.asarray(splits["train"].features.data)
    np.testing.assert_allclose(mean, train_rows.mean(0), rtol=1e-4, atol=1e-6)
    everything = np.concatenate([np.asarray(s.features.data) for s in splits.values()])
    assert not np.allclose(mean, everything.mean(0), rtol=1e-4, atol=1e-6)
    # resume to two epochs: both ranks continue from the checkpoint and agree again
    again = train(
        config_from_dict(_config(tone_corpus, tmp_path, 2)), callbacks=[_RankRecord(str(out))]
    )
    assert again.resumed_from is not None
    ranks = [torch.load(out / f"rank{r}-2.pt") for r in range(WORLD)]
    assert len(ranks[0]["batches"]) == 4  # only the second epoch ran
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=1e-6)
    assert os.listdir(tmp_path / "runs" / "ddp" / "model")
