"""Record reference outputs of the authors' TTMR / TTMR++ code on small random models, for
tests/test_ttmr_parity.py and tests/test_ttmr_pp_parity.py.

Usage (from the repository root, in the project's venv):

    python scripts/record_ttmr_references.py --family ttmr-pp --reference CHECKOUT --side DIR
    python scripts/record_ttmr_references.py --family ttmr --reference CHECKOUT --side DIR

``CHECKOUT`` is a checkout of the authors' repository at the commit named in PROVENANCE below
(seungheondoh/music-text-representation-pp for ttmr-pp, .../music-text-representation for
ttmr); it cannot be installed as a package, so the script puts it on ``sys.path``. ``DIR`` holds
what that code imports and the project lacks, installed without dependencies:
``pip install --no-deps --target DIR torchaudio==2.11.1 einops omegaconf
antlr4-python3-runtime==4.9.3``, then delete ``DIR/torchaudio/lib/*.so`` (built for another
torch; without them torchaudio's pure-Python transforms run on the project's torch).

For each family the script:

1. makes a tiny text tower: a tokenizer trained in a second with ``tokenizers`` (byte-level BPE
   wrapped as ``RobertaTokenizerFast`` for TTMR++, WordPiece as ``BertTokenizerFast`` for TTMR)
   and a small random RoBERTa/BERT;
2. builds the authors' model from their code with small widths and random weights, every
   BatchNorm/LayerNorm parameter and running statistic randomised too;
3. saves it in the original checkpoint format (``torch.save({"epoch", "state_dict",
   "optimizer"})``, TTMR's keys with DDP's ``module.`` prefix) with its ``hparams.yaml``;
4. runs the authors' inference (TTMR++: ``get_latent.py``'s load_wav + ``audio_forward`` per
   track, ``text_forward([text])`` per text; TTMR: the README's ``audio_infer`` and
   ``text_infer``) on :func:`make_clips` and :data:`TEXTS`, and writes the outputs.

Everything lands in tests/fixtures/<family>/ (kept small: the widths are tiny).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PROVENANCE = {
    "ttmr-pp": {
        "repository": "https://github.com/seungheondoh/music-text-representation-pp",
        "commit": "4bc7aa7",
        "licence": "CC-BY-NC-4.0 (README); no code copied, only outputs of random weights",
    },
    "ttmr": {
        "repository": "https://github.com/seungheondoh/music-text-representation",
        "commit": "5e54e0d",
        "licence": "CC-BY-NC-4.0 (README); no code copied, only outputs of random weights",
    },
}
TEXTS = [
    "jazz",
    "fusion jazz with synth, bass, drums, saxophone",
    "a calm solo piano piece in a minor key, slow and sad",
    "banjo",
    # longer than the tiny models' max length: checks truncation
    " ".join(["energetic rock guitar riff with loud drums and shouting vocals"] * 30),
]
#: Test tracks per family: whole numbers of windows plus a tail the original drops.
CLIP_SECONDS = {"ttmr-pp": (4.0, 6.5), "ttmr": (4.0, 6.5)}
CORPUS = [
    "rock pop jazz electronic hip hop metal punk folk blues soul country reggae latin",
    "piano guitar drums bass violin saxophone trumpet organ banjo accordion synth vocals",
    "calm sad happy energetic slow fast loud quiet dark bright minor major key tempo",
    "a song with a catchy melody and a strong beat, fusion jazz, solo acoustic performance",
]


def make_clips(sr: int, seconds: tuple[float, ...]) -> list[np.ndarray]:
    """Deterministic test tracks: harmonic notes, clicks and a seeded PCG64 noise floor."""
    rng = np.random.default_rng(20240101)
    clips = []
    for k, dur in enumerate(seconds):
        t = np.arange(round(dur * sr)) / sr
        y = np.zeros_like(t)
        for i in range(int(np.ceil(dur))):
            seg = (t >= i) & (t < i + 1)
            f0 = 110.0 * 2 ** (((i * 5 + k * 7) % 24) / 12)
            env = np.exp(-3.0 * (t[seg] - i))
            for h in range(1, 6):
                y[seg] += env * np.sin(2 * np.pi * f0 * h * t[seg]) / h
        y += ((np.arange(t.size) % (sr // 2)) < 60) * rng.standard_normal(t.size) * 0.5
        y += 0.01 * rng.standard_normal(t.size)
        clips.append((0.2 * (k + 1) * y / np.abs(y).max()).astype(np.float32))
    return clips


def randomise(model, seed: int, calibrate=None) -> None:  # noqa: ANN001
    """Random values for every norm parameter and running statistic (the rest is random).

    ``calibrate()``, when given, runs audio through the model in train mode first, so that the
    BatchNorm statistics fit the signal (a deep random net otherwise maps every input to nearly
    the same output, and a parity test on it could not see a wrong front end).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    if calibrate is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                module.reset_running_stats()
                module.momentum = None  # a plain average over the calibration batches
        model.train()
        with torch.no_grad():
            calibrate()
        model.eval()
    for module in model.modules():
        norms = torch.nn.BatchNorm2d | torch.nn.BatchNorm1d | torch.nn.LayerNorm
        if isinstance(module, norms) and module.weight is not None:
            module.weight.data = 0.5 + torch.rand(module.weight.shape, generator=g)
            module.bias.data = 0.1 * torch.randn(module.bias.shape, generator=g)
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            noise = 1 + 0.2 * torch.rand(module.running_var.shape, generator=g)
            if calibrate is None:
                module.running_mean.data = 0.1 * torch.randn(module.running_mean.shape, generator=g)
                module.running_var.data = 0.5 * noise
            else:
                module.running_var.data = module.running_var.data * noise


def tiny_text_tower(kind: str, folder: Path) -> None:
    """A trained tokenizer and a small random RoBERTa ('roberta') or BERT ('bert') in folder."""
    import torch
    from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        RobertaConfig,
        RobertaModel,
        RobertaTokenizerFast,
    )

    torch.manual_seed(7)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(CORPUS + TEXTS) + "\n")
        if kind == "roberta":
            bpe = ByteLevelBPETokenizer()
            bpe.train(
                [str(corpus)],
                vocab_size=400,
                min_frequency=1,
                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
            )
            bpe.save_model(tmp)
            tok = RobertaTokenizerFast.from_pretrained(tmp)  # reads vocab.json, merges.txt
            config = RobertaConfig(
                vocab_size=len(tok),
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=40,
                type_vocab_size=1,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
            )
            net = RobertaModel(config)
        else:
            wp = BertWordPieceTokenizer(lowercase=True)
            wp.train([str(corpus)], vocab_size=300, min_frequency=1)
            wp.save_model(tmp)
            tok = BertTokenizerFast.from_pretrained(tmp, do_lower_case=True)  # vocab.txt
            config = BertConfig(
                vocab_size=len(tok),
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=64,
            )
            net = BertModel(config)
    tok.model_max_length = config.max_position_embeddings - (2 if kind == "roberta" else 0)
    tok.save_pretrained(str(folder))
    net.save_pretrained(str(folder))


def record_ttmr_pp(out: Path) -> None:
    import torch
    from mtrpp.model.dual_encoder import DualEncoderModel
    from mtrpp.utils.audio_utils import float32_to_int16, int16_to_float32
    from omegaconf import OmegaConf

    from melodex.encoders.musicnn import mel_filterbank

    with np.load(Path(sys.modules["mtrpp"].__path__[0]) / "modules/assets/mel_filters.npz") as f:
        ref_filters = f["mel_128"]
    gap = float(np.abs(mel_filterbank(sr=22050, n_fft=1024, n_mels=128) - ref_filters).max())
    print(f"melodex mel filters vs the authors' mel_filters.npz: max |diff| {gap:.2e}")

    with tempfile.TemporaryDirectory() as tmp:
        text_dir = Path(tmp) / "roberta-base"
        tiny_text_tower("roberta", text_dir)
        hp = {
            "text_arch": str(text_dir),
            "n_mels": 128,
            "n_fft": 1024,
            "hop_size": 0.01,
            "width": 4,
            "n_heads": 8,
            "sr": 22050,
            "duration": 2,  # 2-s windows keep the test fast; the release uses 10
            "max_length": 24,
            "audio_dim": 32,
            "text_dim": 32,
            "mlp_dim": 16,
            "temperature": 0.1,
        }
        torch.manual_seed(0)
        model = DualEncoderModel(
            text_arch=hp["text_arch"],
            n_mels=hp["n_mels"],
            n_fft=hp["n_fft"],
            hop_size=hp["hop_size"],
            width=hp["width"],
            head=hp["n_heads"],
            sr=hp["sr"],
            duration=hp["duration"],
            max_length=hp["max_length"],
            audio_dim=hp["audio_dim"],
            text_dim=hp["text_dim"],
            mlp_dim=hp["mlp_dim"],
            temperature=hp["temperature"],
        )
        n = hp["sr"] * hp["duration"]
        clips = make_clips(hp["sr"], CLIP_SECONDS["ttmr-pp"])
        windows = torch.from_numpy(
            np.concatenate([c[: len(c) // n * n].reshape(-1, n) for c in clips])
        )
        randomise(model, seed=1, calibrate=lambda: model.audio_forward(windows))
        optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"epoch": 0, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict()},
            out / "ttmrpp_tiny.pth",
        )
        OmegaConf.save(
            OmegaConf.create({**hp, "text_arch": "roberta-base"}), out / "ttmrpp_tiny.yaml"
        )
        shutil.rmtree(out / "roberta-base", ignore_errors=True)
        shutil.copytree(
            text_dir, out / "roberta-base", ignore=shutil.ignore_patterns("*.safetensors")
        )

        audio_vectors, window_outputs = [], []
        with torch.no_grad():
            for clip in clips:
                audio = int16_to_float32(float32_to_int16(clip))  # get_latent.py's load_wav
                ceil = int(audio.shape[-1] // n)
                chunks = np.stack(np.split(audio[: ceil * n], ceil)).astype("float32")
                z = model.audio_forward(torch.from_numpy(chunks))
                window_outputs.append(z.numpy())
                audio_vectors.append(z.mean(0).numpy())
            text_vectors = [model.text_forward([t]).squeeze(0).numpy() for t in TEXTS]
    np.savez_compressed(
        out / "reference.npz",
        audio_vectors=np.stack(audio_vectors),
        window_outputs=np.concatenate(window_outputs),
        text_vectors=np.stack(text_vectors),
    )


def record_ttmr(out: Path) -> None:
    import torch
    from mtr.contrastive.model import ContrastiveModel
    from mtr.modules.audio_rep import TFRep
    from mtr.modules.encoder import MusicTransformer
    from mtr.modules.tokenizer import ResFrontEnd
    from omegaconf import OmegaConf
    from transformers import AutoModel, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        text_dir = Path(tmp) / "bert-base-uncased"
        tiny_text_tower("bert", text_dir)
        hp = {  # the released bert_stochastic hparams, with small widths and 2-s windows
            "framework": "contrastive",
            "text_backbone": "bert-base-uncased",
            "duration": 2.0,
            "sr": 16000,
            "mel_dim": 128,
            "n_fft": 1024,
            "win_length": 1024,
            "frontend": "cnn",
            "mix_type": "cf",
            "audio_rep": "mel",
            "attention_nlayers": 2,
            "attention_ndim": 32,
            "temperature": 0.2,
            "mlp_dim": 16,
            "text_type": "bert",
            "text_rep": "stochastic",
            "text_dim": 32,
            "audio_dim": 32,
        }
        torch.manual_seed(0)
        # as mtr/utils/demo_utils.py get_model() builds it (conv_ndim 8 instead of 128)
        audio_preprocessr = TFRep(
            sample_rate=hp["sr"],
            f_min=0,
            f_max=int(hp["sr"] / 2),
            n_fft=hp["n_fft"],
            win_length=hp["win_length"],
            hop_length=int(0.01 * hp["sr"]),
            n_mels=hp["mel_dim"],
        )
        frontend = ResFrontEnd(
            input_size=(hp["mel_dim"], int(100 * hp["duration"]) + 1),
            conv_ndim=8,
            attention_ndim=hp["attention_ndim"],
            mix_type=hp["mix_type"],
        )
        audio_encoder = MusicTransformer(
            audio_representation=audio_preprocessr,
            frontend=frontend,
            audio_rep=hp["audio_rep"],
            attention_nlayers=hp["attention_nlayers"],
            attention_ndim=hp["attention_ndim"],
        )
        model = ContrastiveModel(
            audio_encoder=audio_encoder,
            text_encoder=AutoModel.from_pretrained(str(text_dir)),
            text_type="bert",
            audio_dim=hp["attention_ndim"],
            text_dim=hp["text_dim"],
            mlp_dim=hp["mlp_dim"],
            temperature=hp["temperature"],
        )
        tokenizer = AutoTokenizer.from_pretrained(str(text_dir))
        n = int(hp["duration"] * hp["sr"])
        clips = make_clips(hp["sr"], CLIP_SECONDS["ttmr"])
        windows = np.concatenate([c[: len(c) // n * n].reshape(-1, n) for c in clips])
        randomise(model, seed=1, calibrate=lambda: model.encode_audio(torch.from_numpy(windows)))
        out.mkdir(parents=True, exist_ok=True)
        state = {"module." + k: v for k, v in model.state_dict().items()}  # saved under DDP
        optimizer = torch.optim.AdamW(model.parameters(), 5e-5)
        torch.save(
            {"epoch": 0, "state_dict": state, "optimizer": optimizer.state_dict()}, out / "best.pth"
        )
        OmegaConf.save(OmegaConf.create(hp), out / "hparams.yaml")
        shutil.rmtree(out / "bert-base-uncased", ignore_errors=True)
        shutil.copytree(
            text_dir, out / "bert-base-uncased", ignore=shutil.ignore_patterns("*.safetensors")
        )

        audio_vectors, window_outputs = [], []
        with torch.no_grad():
            for clip in clips:  # the README's audio_infer
                hop = int(len(clip) // n)
                audio = np.stack([clip[i * n : (i + 1) * n] for i in range(hop)]).astype("float32")
                z = model.encode_audio(torch.from_numpy(audio))
                window_outputs.append(z.numpy())
                audio_vectors.append(z.mean(0).numpy())
            # the README's text_infer; truncation added so the over-long text does not fail
            # (for the others it changes nothing)
            text_vectors = [
                model.encode_bert_text(
                    tokenizer(t, truncation=True, return_tensors="pt")["input_ids"], None
                )
                .squeeze(0)
                .numpy()
                for t in TEXTS
            ]
    np.savez_compressed(
        out / "reference.npz",
        audio_vectors=np.stack(audio_vectors),
        window_outputs=np.concatenate(window_outputs),
        text_vectors=np.stack(text_vectors),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=sorted(PROVENANCE), required=True)
    parser.add_argument("--reference", type=Path, required=True, help="the authors' checkout")
    parser.add_argument("--side", type=Path, required=True, help="torchaudio, einops, omegaconf")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(args.reference), str(args.side), str(ROOT / "src")]
    out = FIXTURES / args.family.replace("-", "_")
    {"ttmr-pp": record_ttmr_pp, "ttmr": record_ttmr}[args.family](out)
    (out / "PROVENANCE.json").write_text(
        json.dumps(
            {
                **PROVENANCE[args.family],
                "made_by": "scripts/record_ttmr_references.py",
                "texts": TEXTS,
            },
            indent=2,
        )
        + "\n"
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
