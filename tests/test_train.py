"""Every config in configs/ trains on a tiny demo corpus, and its model serves the library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from melodex.data.demo import build_demo
from melodex.data.manifest import read_manifest, write_manifest
from melodex.errors import MelodexError
from melodex.lab.config import load_config
from melodex.lab.train import train
from melodex.library.library import Library
from melodex.models import load_model

pytestmark = pytest.mark.heavy  # training runs

# every config that reads audio; two-branch-descriptors reads AcousticBrainz documents, not the
# demo corpus's audio: tests/test_train_descriptors.py trains it
CONFIGS = sorted(
    c
    for c in Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml")
    if c.stem != "two-branch-descriptors"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    manifest = build_demo(root, n_tracks=12, seconds=8)
    items = read_manifest(manifest)
    for i, item in enumerate(items):  # fixed splits so valid and test are never empty
        item["split"] = "train" if i < 8 else ("valid" if i < 10 else "test")
        item["album"] = f"Album {i % 3}"  # neighbourhoods for the two-branch sampler
    out = root / "fixed-splits.jsonl"
    write_manifest(out, items)
    return out


def small(config: Path, corpus: Path, tmp: Path, *extra: str):
    return load_config(
        config,
        [
            f"data.manifest={json.dumps(str(corpus))}",
            f"data.cache_dir={json.dumps(str(tmp / 'cache'))}",
            f"output_dir={json.dumps(str(tmp / 'runs'))}",
            "optim.epochs=1",
            "optim.batch_size=8",
            "optim.triplets_per_epoch=16",
            *extra,
        ],
    )


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_trains_and_its_model_answers_searches(
    config: Path, corpus: Path, tmp_path: Path
) -> None:
    result = train(small(config, corpus, tmp_path))
    assert (result.model_dir / "config.json").exists()
    assert set(result.metrics) == {"valid", "test"}
    assert 0.0 <= result.metrics["test"]["R@1"] <= 1.0
    model = load_model(result.model_dir)
    lib = Library(tmp_path / "db", model=model)
    report = lib.index(corpus.parent / "audio")
    assert len(report.added) == 12 and not report.failed
    hits = lib.search("a fast reel on fiddle", k=3)
    assert len(hits) == 3 and hits[0].score >= hits[-1].score
    vec = model.encode_text(["piano", "organ"])
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)


def test_head_only_training_learns(corpus: Path, tmp_path: Path) -> None:
    """Enough epochs on 8 tracks: training captions find their own track (loss can fail this).

    The last epoch's weights are judged: the exported model is the best-on-valid one, and with
    two valid tracks R@10 is 1.0 from the first epoch, so that is the (barely trained) first.
    """
    config = small(
        CONFIGS[[c.stem for c in CONFIGS].index("head-only")], corpus, tmp_path, "optim.epochs=60"
    )
    record = _EpochWeights()
    result = train(config, callbacks=[record])
    model = load_model(result.model_dir)
    assert not model.net.load_state_dict(record.states[-1], strict=False).unexpected_keys
    items = [i for i in read_manifest(corpus) if i["split"] == "train"]
    audio = model.encode_audio([corpus.parent / i["audio"] for i in items])
    captions = [next(t["text"] for t in i["texts"] if t["kind"] == "caption") for i in items]
    ranks = (model.encode_text(captions) @ audio.T).argmax(axis=1)
    assert (ranks == np.arange(len(items))).mean() >= 0.75


def test_bad_config_errors_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noptim: {epochz: 3}\n")
    with pytest.raises(MelodexError, match=r"optim: unknown field\(s\) \['epochz'\]"):
        load_config(bad)
    bad.write_text("name: x\ndata: {text_mode: poetry}\n")
    with pytest.raises(MelodexError, match="text_mode"):
        load_config(bad)


def test_killed_training_resumes(corpus: Path, tmp_path: Path) -> None:
    config = CONFIGS[[c.stem for c in CONFIGS].index("head-only")]
    sets = [
        f"data.manifest={json.dumps(str(corpus))}",
        f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}",
        f"output_dir={json.dumps(str(tmp_path / 'runs'))}",
        "optim.epochs=400",
        "optim.batch_size=4",
        "trainer.checkpoint_every_n_steps=1",
    ]
    args = [sys.executable, "-m", "melodex", "train", str(config)] + [
        a for s in sets for a in ("-o", s)
    ]
    last = tmp_path / "runs" / "head-only" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not last.exists():
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists()
    done = subprocess.run(
        args[:-2] + ["-o", "optim.epochs=3"], capture_output=True, text=True, timeout=300
    )
    # fewer epochs than the killed run reached is fine: it resumes and stops at once
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout
    assert load_model(tmp_path / "runs" / "head-only" / "model").dim == 128


def test_finetune_command_adapts_heads_to_a_manifest(corpus: Path, tmp_path: Path) -> None:
    from melodex.cli import main

    with pytest.raises(SystemExit) as done:
        main(
            [
                "finetune",
                str(corpus),
                "--name",
                "mine",
                "--epochs",
                "2",
                "--output-dir",
                str(tmp_path / "runs"),
                "-o",
                f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}",
            ]
        )
    assert done.value.code in (0, None)
    model = load_model(tmp_path / "runs" / "mine" / "model")
    assert model.config.name == "mine" and model.dim == 128


def test_domain_word2vec_initialises_a_word_encoder(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("gensim")
    from melodex.cli import main

    with pytest.raises(SystemExit) as done:
        main(["data", "word2vec", str(corpus), str(tmp_path / "w2v"), "--dim", "16"])
    assert done.value.code in (0, None)
    config = CONFIGS[[c.stem for c in CONFIGS].index("tag-metric-learning")]
    result = train(
        small(
            config,
            corpus,
            tmp_path,
            f"model.text_encoder.params.w2v={json.dumps(str(tmp_path / 'w2v'))}",
            "model.text_encoder.params.embedding_dim=16",
        )
    )
    assert load_model(result.model_dir).encode_text("fiddle").shape == (128,)


class _EpochWeights(L.Callback):
    """Records each validated epoch's R@10 and a copy of the weights at that moment."""

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.states: list[dict[str, torch.Tensor]] = []

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.scores.append(float(trainer.callback_metrics["val/R@10"]))
        self.states.append({k: v.clone() for k, v in module.net.trainable_state().items()})


def test_best_on_valid_exports_the_best_epoch_not_the_last(corpus: Path, tmp_path: Path) -> None:
    """The exported model holds the first epoch with the best valid R@10 (here valid has two
    tracks, so R@10 is 1.0 from epoch 0 and the best epoch is never the last)."""
    record = _EpochWeights()
    config = small(
        CONFIGS[[c.stem for c in CONFIGS].index("head-only")],
        corpus,
        tmp_path,
        "optim.epochs=3",
        "optim.lr=0.01",
    )
    result = train(config, callbacks=[record])
    best = int(np.argmax(record.scores))  # the first maximum: later ties do not replace it
    assert len(record.states) == 3 and best != len(record.states) - 1
    exported = load_model(result.model_dir).net.trainable_state()
    last = record.states[-1]
    assert any(not torch.equal(record.states[best][k], last[k]) for k in last)  # it did train
    for name, value in record.states[best].items():
        torch.testing.assert_close(exported[name], value, rtol=0, atol=0)


def test_resuming_with_fewer_epochs_than_reached_stops_at_once(
    corpus: Path, tmp_path: Path
) -> None:
    """Deterministic twin of the kill test: a run that reached more epochs than the new
    config asks for resumes, trains no further, and exports (Lightning alone refuses it)."""
    head_only = CONFIGS[[c.stem for c in CONFIGS].index("head-only")]
    every_step = "trainer.checkpoint_every_n_steps=1"
    first = train(small(head_only, corpus, tmp_path, "optim.epochs=3", every_step))
    assert first.resumed_from is None
    steps = _EpochWeights()
    again = train(
        small(head_only, corpus, tmp_path, "optim.epochs=1", every_step), callbacks=[steps]
    )
    assert again.resumed_from == tmp_path / "runs" / "head-only" / "checkpoints" / "last.ckpt"
    assert steps.states == []  # no epoch trained after the resume
    assert set(again.metrics) == {"valid", "test"}
    assert load_model(again.model_dir).dim == 128
