"""Train a joint model from a config: cached features, Lightning, checkpoints, a model folder.

``train(config)`` writes, under ``<output_dir>/<name>/``: ``checkpoints/last.ckpt`` (every few
steps and at each epoch end: a killed run resumes from it), CSV and TensorBoard logs, ``model/``
(the network that did best on the valid split, loadable by ``melodex.load_model`` and
``melodex index --model``) and ``metrics.json`` (valid and test caption->track retrieval).
Items left out because their file could not be read (``data.on_unreadable``) are listed in
``skipped.json`` and in ``TrainResult.skipped``.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from melodex.data.manifest import read_manifest
from melodex.encoders.audio import build_audio_encoder
from melodex.encoders.text_trainable import build_text_encoder
from melodex.errors import MelodexError
from melodex.lab.config import TrainConfig
from melodex.lab.data import prepare_splits
from melodex.lab.distributed import ShardedBatchSampler, TripletBatchSampler
from melodex.lab.module import JointTraining, retrieval_metrics
from melodex.lab.sampling import NeighbourhoodBatchSampler, UniqueBatchSampler
from melodex.models.dual import DualEncoder, DualEncoderModel, export_model
from melodex.progress import ProgressFn
from melodex.text import Vocabulary

log = logging.getLogger(__name__)
WORD_ENCODERS = ("mean_word_embedding", "bilstm")


@dataclass
class TrainResult:
    model_dir: Path
    metrics: dict[str, dict[str, float]]
    resumed_from: Path | None
    is_global_zero: bool = True  # False in the other ranks' processes (strategy "ddp")
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable items left out


def _training_texts(config: TrainConfig) -> list[str]:
    items = read_manifest(Path(config.data.manifest), check_audio=False)
    return [t["text"] for it in items if it["split"] == "train" for t in it["texts"]] + [
        tag for it in items if it["split"] == "train" for tag in it.get("tags", [])
    ]


def build_network(config: TrainConfig) -> DualEncoder:
    """The untrained network of a config (or the network of ``model.init_from`` to fine-tune)."""
    section = config.model
    if section.init_from:
        from melodex.models import load_model

        base = load_model(section.init_from)
        if not isinstance(base, DualEncoderModel):
            raise MelodexError(f"{section.init_from}: init_from needs a trained dual-encoder model")
        return copy.deepcopy(base.net).train()
    audio = build_audio_encoder(
        section.audio_encoder["name"], **section.audio_encoder.get("params", {})
    )
    text_name = section.text_encoder["name"]
    text_params = dict(section.text_encoder.get("params", {}))
    if text_name in WORD_ENCODERS:
        w2v_path = text_params.pop("w2v", None)
        w2v = None
        if w2v_path:  # a melodex word2vec folder, or a released word2vec .bin / .txt file
            from melodex.encoders.word2vec import load_word_vectors

            w2v = load_word_vectors(w2v_path)
            text_params["w2v"] = w2v
        if "vocab" not in text_params:
            phrases = [w for w in w2v.words if "_" in w] if w2v is not None else []
            vocab = Vocabulary.build(
                _training_texts(config), min_count=1, max_size=60_000, phrases=phrases
            )
            text_params["vocab"] = vocab.to_dict()
    text = build_text_encoder(text_name, **text_params)
    return DualEncoder(audio, text, dim=section.dim, head=section.head, dropout=section.dropout)


class _Steps(torch.utils.data.Dataset):
    """Indices 0..n-1; the batch sampler decides what a batch holds."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class _BestOnValid(L.Callback):
    """Keep the trainable weights of the epoch with the best valid R@10 (saved in checkpoints)."""

    def __init__(self) -> None:
        self.best = -1.0
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: JointTraining) -> None:
        if trainer.sanity_checking:
            return
        score = float(trainer.callback_metrics.get("val/R@10", torch.tensor(-1.0)))
        if score > self.best or self.state is None:
            self.best = score
            self.state = module.net.trainable_state()

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "state": self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.state = state["state"]


def _batches(config: TrainConfig, module: JointTraining) -> DataLoader:
    """This rank's batches: every sampler plans the epoch from (seed, epoch) and shards it."""
    train = module.splits["train"]
    batch = config.optim.batch_size
    loss, sampling = config.objective.loss, config.objective.sampling
    seed = config.seed + 2
    sampler: Any
    if loss == "triplet":
        # batch_size is per device: one global step holds batch_size * world triplets
        world = _world_size(config)
        sampler = TripletBatchSampler(
            module.item_tags,
            strategy=sampling,
            batch_size=batch,
            steps=max(1, config.optim.triplets_per_epoch // (batch * world)),
            seed=seed,
            weighting=module.triplet_weighting
            if sampling == "balanced_weighted" or config.objective.track_negatives
            else None,
        )
        module.triplet_sampler = sampler
    elif loss == "ranking" and sampling == "neighbourhood":
        base = NeighbourhoodBatchSampler(
            train.labels(config.objective.neighbourhood),
            batch_size=batch,
            rng=np.random.default_rng(seed),
        )
        sampler = ShardedBatchSampler(base, seed=seed)
    else:
        base = UniqueBatchSampler(train.ids, batch_size=batch, rng=np.random.default_rng(seed))
        sampler = ShardedBatchSampler(base, seed=seed)
    return DataLoader(
        _Steps(len(train.items)), batch_sampler=sampler, collate_fn=list, num_workers=0
    )


def _world_size(config: TrainConfig) -> int:
    """Processes the trainer will start (devices x nodes); 1 for 'auto' on one device."""
    devices = config.trainer.devices
    if isinstance(devices, int):
        count = devices
    elif isinstance(devices, str) and devices.isdigit():
        count = int(devices)
    elif isinstance(devices, list | tuple):
        count = len(devices)
    else:  # "auto" / -1: resolved by Lightning; the sampler reads the process group then
        count = 0
    return max(1, count * config.trainer.num_nodes) if count else 1


class _Export(L.Callback):
    """On rank 0 only, after fitting: load the best-on-valid weights, score the valid and test
    splits, write ``model/`` and ``metrics.json``. Other ranks write nothing."""

    def __init__(self, config: TrainConfig, best: _BestOnValid, tags: list[str]) -> None:
        self.config, self.best, self.tags = config, best, tags

    def on_fit_end(self, trainer: L.Trainer, module: JointTraining) -> None:
        if not trainer.is_global_zero:
            return
        config = self.config
        if self.best.state is not None:
            module.net.load_state_dict(self.best.state, strict=False)
        module.net.eval()
        metrics = {
            name: retrieval_metrics(module, split, kinds=tuple(config.data.sentence_kinds))
            for name, split in module.splits.items()
            if name != "train"
        }
        model = export_model(
            module.net,
            name=config.name,
            tags=self.tags,
            max_windows=config.data.max_windows,
            extra={"trained_on": str(config.data.manifest)},
        )
        model.save(config.run_dir / "model")
        (config.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if getattr(module, "triplet_sampler", None) is not None and module.triplet_sampler.stats:
            stats = module.triplet_sampler.stats
            (config.run_dir / "negatives.json").write_text(json.dumps(stats, indent=2) + "\n")


def _checkpoint_epoch(path: Path | None) -> int:
    """The epoch a checkpoint was saved in (0 for none).

    A run resumed with fewer epochs than it already reached stops at once, as one resumed at
    exactly its end does; Lightning would refuse it instead (``current_epoch > max_epochs``)."""
    if path is None:
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as exc:  # noqa: BLE001 (torch raises several types for a bad file)
        raise MelodexError(f"{path}: cannot read the checkpoint to resume from ({exc})") from exc
    return int(state.get("epoch", 0))


def train(
    config: TrainConfig,
    *,
    resume: bool = True,
    progress: ProgressFn | None = None,
    enable_progress_bar: bool = False,
    callbacks: list[L.Callback] | None = None,
) -> TrainResult:
    """Run a config end to end; resumes from ``checkpoints/last.ckpt`` when it exists."""
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    # every rank writes the same text here (ranks are not known before fit starts)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    L.seed_everything(config.seed, workers=True, verbose=False)
    net = build_network(config)
    skipped: list[dict[str, str]] = []
    splits = prepare_splits(config, net, progress=progress, skipped=skipped)
    skipped_file = run_dir / "skipped.json"
    if skipped:
        skipped_file.write_text(json.dumps(skipped, indent=2) + "\n")
    else:
        skipped_file.unlink(missing_ok=True)  # a rerun that read everything
    fit_scaling = getattr(net.audio_encoder, "fit_standardisation", None)
    if fit_scaling is not None and not config.model.init_from:
        fit_scaling(splits["train"].features.data)  # training split only; saved with the model
    tags = sorted({t for it in splits["train"].items for t in it.get("tags", [])})
    module = JointTraining(config, net, splits, tags)
    module.warm_text_cache()
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed = last if resume and last.exists() else None
    best = _BestOnValid()
    t = config.trainer
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        max_epochs=max(config.optim.epochs, _checkpoint_epoch(resumed)),
        deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps,
        default_root_dir=str(run_dir),
        logger=[CSVLogger(str(run_dir), name="logs"), TensorBoardLogger(str(run_dir), name="tb")],
        callbacks=[
            ModelCheckpoint(
                dirpath=str(run_dir / "checkpoints"),
                save_last=True,
                save_top_k=0,
                every_n_train_steps=t.checkpoint_every_n_steps,
            ),
            best,
            _Export(config, best, tags),
            *(callbacks or []),
        ],
        enable_progress_bar=enable_progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        trainer.fit(
            module,
            _batches(config, module),
            DataLoader([0], batch_size=1),
            ckpt_path=str(resumed) if resumed else None,
        )
    if not trainer.is_global_zero:  # strategy "ddp": this process is another rank
        return TrainResult(run_dir / "model", {}, resumed, is_global_zero=False, skipped=skipped)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return TrainResult(
        model_dir=run_dir / "model", metrics=metrics, resumed_from=resumed, skipped=skipped
    )
