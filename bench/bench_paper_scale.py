"""A few training steps of each paper-size config (configs/paper/): samples/s and peak memory.

    .venv/bin/python bench/bench_paper_scale.py [--device cpu|cuda] [--batch 2] [--steps 3]
        [--only ttmr-plus-plus,ttmr]

Each config runs in its own process (so its peak memory is its own): the network of the
config at the paper's size, AdamW, ``--steps`` steps after one warm-up step, on random
front-end outputs (what the trainer caches) and short captions. Every step uses InfoNCE (the
encoders dominate the cost; the configs' own objectives are tested in tests/test_train.py).
No weights are downloaded: the BERT/RoBERTa towers are built at base size with random weights
(``init: random``) around a small offline tokenizer, so the figures are compute and memory,
not quality. On CPU the batch is small (``--batch``); the papers' batches need a GPU
(``--device cuda --batch 768`` for TTMR++ needs about the memory the run prints, times 768/B).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["ttmr-plus-plus", "wikimute", "won-tag-metric-learning", "ttmr", "two-branch"]
SENTENCES = [
    "a calm piano piece in a minor key",
    "fast fiddle reel with a bright tone",
    "slow orchestral strings and smooth jazz",
    "heavy metal guitar with loud drums",
]


def _hf_folder(kind: str) -> Path:
    """A base-size BERT/RoBERTa config with a small offline tokenizer (weights: random)."""
    folder = ROOT / "bench" / ".data" / "hf" / f"{kind}-base-random"
    if (folder / "config.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "bert":
        from transformers import BertConfig, BertTokenizerFast

        words = sorted({w for s in SENTENCES for w in s.split()})
        (folder / "vocab.txt").write_text(
            "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])
        )
        BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
        BertConfig().save_pretrained(folder)  # bert-base: 12 layers, 768 wide, 30,522 tokens
    else:
        from tokenizers import ByteLevelBPETokenizer
        from transformers import RobertaConfig, RobertaTokenizerFast

        bpe = ByteLevelBPETokenizer()
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        bpe.train_from_iterator(SENTENCES * 4, vocab_size=300, special_tokens=specials)
        tok = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, model_max_length=512)
        tok.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                                "pad_token": "<pad>", "cls_token": "<s>", "sep_token": "</s>",
                                "mask_token": "<mask>"})  # fmt: skip
        tok.save_pretrained(folder)
        # roberta-base: 12 layers, 768 wide, 50,265 tokens
        RobertaConfig(vocab_size=50265, max_position_embeddings=514, pad_token_id=1,
                      type_vocab_size=1).save_pretrained(folder)  # fmt: skip
    return folder


def run_one(name: str, device: str, batch: int, steps: int) -> dict:
    import torch

    from melodex.encoders.audio import build_audio_encoder
    from melodex.encoders.text_trainable import build_text_encoder
    from melodex.lab.config import load_config
    from melodex.lab.losses import InfoNCELoss
    from melodex.models.dual import DualEncoder
    from melodex.text import Vocabulary

    config = load_config(ROOT / "configs" / "paper" / f"{name}.yaml")
    section = config.model
    audio = build_audio_encoder(section.audio_encoder["name"], **section.audio_encoder["params"])
    text_name = section.text_encoder["name"]
    params = dict(section.text_encoder.get("params", {}))
    if text_name == "hf_transformer":
        kind = "roberta" if "roberta" in params["model"] else "bert"
        params.update(model=str(_hf_folder(kind)), init="random")
    elif text_name in ("mean_word_embedding", "bilstm"):
        words = " ".join(f"w{i}" for i in range(20_000))  # a realistic vocabulary size
        params["vocab"] = Vocabulary.build([words, *SENTENCES]).to_dict()
    text = build_text_encoder(text_name, **params)
    net = DualEncoder(audio, text, dim=section.dim, head=section.head).to(device).train()
    loss_fn = InfoNCELoss(temperature=0.1).to(device)
    trainable = [p for p in [*net.parameters(), *loss_fn.parameters()] if p.requires_grad]
    optim = torch.optim.AdamW(trainable, lr=config.optim.lr)
    shape = tuple(audio.frontend.output_shape)
    x = torch.randn((batch, *shape), device=device)
    texts = [SENTENCES[i % len(SENTENCES)] + f" {i}" for i in range(batch)]

    def step() -> None:
        optim.zero_grad(set_to_none=True)
        a = net.embed_audio_features(net.audio_features(x))
        t = net.embed_text_features(net.text_features(texts))
        loss_fn(a, t).backward()
        optim.step()

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "config": name,
        "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
        "trainable_M": sum(p.numel() for p in trainable) / 1e6,
        "input": list(shape),
        "batch": batch,
        "samples_per_s": batch * steps / seconds,
        "peak_MiB": peak,
        "peak_kind": "cuda allocated" if device == "cuda" else "process max RSS",
        "paper_batch": config.optim.batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated config names")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.device, args.batch, args.steps)))
        return
    print(f"device {args.device}; load average {os.getloadavg()[0]:.1f}; batch {args.batch}, "
          f"{args.steps} timed steps after 1 warm-up")  # fmt: skip
    print("| config | params (M) | trainable (M) | input | samples/s | peak MiB | paper batch |")
    print("|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        if args.only and name not in args.only.split(","):
            continue
        cmd = [sys.executable, __file__, "--one", name, "--device", args.device,
               "--batch", str(args.batch), "--steps", str(args.steps)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1][:120]} |||||")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['params_M']:.1f} | {r['trainable_M']:.1f} | {tuple(r['input'])} | "
              f"{r['samples_per_s']:.2f} | {r['peak_MiB']:.0f} ({r['peak_kind']}) | "
              f"{r['paper_batch']} |", flush=True)  # fmt: skip
    print(f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
