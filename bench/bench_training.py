"""Training throughput: pairs per second on cached features and on raw audio.

Head-only training (frozen musicnn + frozen MiniLM, cached) is what `melodex finetune` runs;
the target is 100k pairs per epoch in under 30 s on 2 cores. Raw-audio training decodes, runs
the front-end and a trainable encoder for every pair, which is what the cache avoids.

    .venv/bin/python bench/bench_training.py --manifest demo-data/corpus/manifest.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from melodex.audio import frame_windows, load_audio  # noqa: E402
from melodex.lab.config import load_config  # noqa: E402
from melodex.lab.data import prepare_splits  # noqa: E402
from melodex.lab.module import JointTraining  # noqa: E402
from melodex.lab.train import build_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def steps_per_second(module: JointTraining, batch: int, steps: int) -> float:
    optim = module.configure_optimizers()
    n = len(module.splits["train"].items)
    rng = np.random.default_rng(0)
    for _ in range(3):  # warm-up (fills the frozen-text cache too)
        idx = rng.choice(n, size=min(batch, n), replace=False).tolist()
        module.training_step(idx, 0).backward()
    start = time.perf_counter()
    for _ in range(steps):
        idx = rng.choice(n, size=min(batch, n), replace=False).tolist()
        optim.zero_grad()
        loss = module.training_step(idx, 0)
        loss.backward()
        optim.step()
    return steps / (time.perf_counter() - start)


def cached(manifest: str, batch: int, steps: int) -> None:
    config = load_config(
        ROOT / "configs" / "head-only.yaml", [f"data.manifest={json.dumps(manifest)}"]
    )
    net = build_network(config)
    splits = prepare_splits(config, net)
    module = JointTraining(
        config, net, splits, sorted({t for i in splits["train"].items for t in i["tags"]})
    )
    module.log = lambda *a, **k: None  # no trainer attached
    start = time.perf_counter()
    n_texts = module.warm_text_cache()
    print(
        f"frozen text encoder, once per run: {n_texts} texts in {time.perf_counter() - start:.1f} s"
    )
    batch = min(batch, len(splits["train"].items))
    rate = steps_per_second(module, batch, steps) * batch
    print(
        f"head-only on cached features: batch {batch}: {rate:,.0f} pairs/s -> 100k pairs in {1e5 / rate:.1f} s"
    )


def raw_audio(manifest: str, batch: int, steps: int) -> None:
    """Short-chunk CNN trained from audio files: decode + front-end + encoder every step."""
    config = load_config(
        ROOT / "configs" / "tag-metric-learning.yaml", [f"data.manifest={json.dumps(manifest)}"]
    )
    net = build_network(config)
    from melodex.data.manifest import read_manifest

    items = [i for i in read_manifest(Path(manifest)) if i["split"] == "train"][: batch * 2]
    root = Path(manifest).parent
    frontend = net.frontend
    optim = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    from melodex.lab.losses import InfoNCELoss

    loss_fn = InfoNCELoss()
    texts = [i["texts"][0]["text"] for i in items]
    start = time.perf_counter()
    for step in range(steps):
        chosen = items[(step * batch) % len(items) :][:batch]
        windows = []
        for item in chosen:
            y = load_audio(root / item["audio"], sr=frontend.sample_rate)
            windows.append(frame_windows(y, window=frontend.window_samples)[0])
        x = frontend(torch.from_numpy(np.stack(windows)))
        audio = net.embed_audio_features(net.audio_features(x))
        text = net.embed_text_features(net.text_features(texts[: len(chosen)]))
        optim.zero_grad()
        loss_fn(audio, text).backward()
        optim.step()
    rate = steps * batch / (time.perf_counter() - start)
    print(
        f"short-chunk CNN from raw audio: batch {batch}: {rate:,.1f} pairs/s -> 100k pairs in {1e5 / rate / 60:.0f} min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", default="demo-data/corpus/manifest.jsonl")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--raw-batch", type=int, default=16)
    parser.add_argument("--raw-steps", type=int, default=3)
    args = parser.parse_args()
    print(
        f"cores: {os.cpu_count()}, torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}"
    )
    cached(args.manifest, args.batch, args.steps)
    raw_audio(args.manifest, args.raw_batch, args.raw_steps)


if __name__ == "__main__":
    main()
