"""Record the ``msclap`` package's own inference on random weights, for
tests/test_ms_clap_parity.py (tests/fixtures/ms_clap/reference.npz).

msclap 1.3.4 cannot be installed beside melodex (it pins numpy<2 and transformers<5), so run
this in a side environment::

    python3.11 -m venv /work/side/msclap
    /work/side/msclap/bin/pip install torch==2.13.0 && /work/side/msclap/bin/pip install msclap==1.3.4
    HF_HUB_OFFLINE=1 /work/side/msclap/bin/python scripts/record_ms_clap_reference.py [2022]

Offline there is no ``gpt2`` (2023) or ``bert-base-uncased`` (2022): the package's
``AutoModel.from_pretrained`` and ``AutoTokenizer.from_pretrained`` are replaced by a one-layer
GPT-2 or BERT (hidden 768, 12 heads, as ``transformer_embed_dim`` needs) and a tokenizer trained
on a few sentences (a byte-level BPE whose ids start at ``'!' = 0`` like GPT-2's; an uncased
WordPiece with ``[PAD] = 0``), whose files go into the fixture.
torchaudio's binary does not load beside torch 2.13, so ``torchaudio.load`` is replaced by a
lookup of the clips below (at 44.1 kHz: the package resamples nothing). Every other line that
runs is the package's: ``CLAPWrapper(model_fp, version)``, ``get_audio_embeddings``
(its repeat rule for a short clip included) and ``get_text_embeddings``.

The functions above ``main`` are plain numpy and are imported by the test, which rebuilds the
same checkpoint from the recorded key names and shapes.
"""

from __future__ import annotations

import json
import sys
import types
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "ms_clap" / "reference.npz"
FIXTURE_2022 = ROOT / "tests" / "fixtures" / "ms_clap" / "reference_2022.npz"
SR = 44100
TEXTS = [
    "calm solo piano",
    "a reggae guitar with latin percussion and a trumpet",
    "loud drums! and distorted electric guitar",  # '!' is GPT-2's pad id: msclap's quirk
]
SENTENCES = [
    "calm solo piano with soft dynamics",
    "loud distorted electric guitar riff, heavy metal drums!",
    "an orchestra plays a slow romantic waltz with strings and horns",
    "upbeat electronic dance music with synth bass and claps",
    "a jazz saxophone improvises over walking bass and brushed drums",
    "folk fiddle tune, a reel in D major with accordion and banjo",
    "reggae guitar skank, latin percussion, church organ, trumpet fanfare",
]
EOT = "<|endoftext|>"
#: Release keys kept as the package computes them (torchlibrosa's STFT and mel constants, the
#: shifted windows' attention masks): randomising them would test another network.
CONSTANT = (
    "audio_encoder.base.htsat.spectrogram_extractor.",
    "audio_encoder.base.htsat.logmel_extractor.",
)
COMPUTED = (".attn_mask",)
MEL_KEY = "audio_encoder.base.htsat.logmel_extractor.melW"
CONSTANT_2022 = (
    "audio_encoder.base.spectrogram_extractor.",
    "audio_encoder.base.logmel_extractor.",
)
MEL_KEY_2022 = "audio_encoder.base.logmel_extractor.melW"


def fixture_tensor(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The random value of one parameter: seeded by its name, scaled so activations stay sane."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    n = rng.standard_normal(shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        value = 0.5 + rng.random(shape)
    elif leaf == "logit_scale":
        value = np.full(shape, np.log(1 / 0.07))
    elif ("norm" in key.lower() or ".bn" in key or "bn0" in key or ".ln_" in key) and (
        leaf == "weight"
    ):
        value = 1 + 0.1 * n
    elif len(shape) >= 2:
        # GPT-2's Conv1D weights are (in, out); every other layer's are (out, in, ...)
        fan_in = shape[0] if ".c_" in key else int(np.prod(shape[1:]))
        value = n / np.sqrt(max(fan_in, 1))
    else:
        value = 0.1 * n
    return value.astype(np.float32)


def make_audio(window: float = 7.0) -> list[np.ndarray]:
    """A clip of one window (7 s; 5 s for 2022) and a 3 s clip (repeated to the window),
    44.1 kHz, inside [-1, 1]."""
    rng = np.random.default_rng(11)
    out = []
    for seconds, hz in ((window, 330.0), (3.0, 523.0)):
        t = np.arange(int(seconds * SR)) / SR
        y = 0.4 * np.sin(2 * np.pi * hz * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
        out.append((y + 0.02 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def train_tokenizer_files(folder: Path) -> None:
    """A byte-level BPE whose base alphabet comes first ('!' = 0, as in GPT-2)."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES * 4, vocab_size=300, min_frequency=1, special_tokens=[])
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))


def gpt2_tokenizer(vocab_json: str, merges_txt: str, folder: Path):  # noqa: ANN201
    """The fixture's tokenizer as transformers' GPT2TokenizerFast, its files written to
    ``folder`` (``<|endoftext|>`` appended to the vocabulary, as GPT-2's last id)."""
    from transformers import GPT2TokenizerFast

    vocab = json.loads(vocab_json)
    vocab.setdefault(EOT, len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text(merges_txt)
    return GPT2TokenizerFast.from_pretrained(
        str(folder), unk_token=EOT, bos_token=EOT, eos_token=EOT
    )


def train_wordpiece_files(folder: Path) -> str:
    """A small uncased WordPiece vocabulary ([PAD] = 0, as BERT's); returns vocab.txt's text."""
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(
        SENTENCES * 4,
        vocab_size=200,
        min_frequency=1,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    wp.save_model(str(folder))
    return (folder / "vocab.txt").read_text()


def bert_tokenizer(vocab_txt: str, folder: Path):  # noqa: ANN201
    """The fixture's WordPiece vocabulary as BertTokenizerFast, vocab.txt written to ``folder``."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text(vocab_txt)
    return BertTokenizerFast.from_pretrained(str(folder))


def main(version: str = "2023") -> None:
    import torch
    from transformers import (
        AutoModel,
        AutoTokenizer,
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2Model,
    )

    tmp = Path("/tmp/ms_clap_reference") / version
    extra: dict[str, np.ndarray] = {}
    if version == "2023":
        train_tokenizer_files(tmp / "tok")
        vocab_json = (tmp / "tok" / "vocab.json").read_text()
        merges_txt = (tmp / "tok" / "merges.txt").read_text()
        tok = gpt2_tokenizer(vocab_json, merges_txt, tmp / "gpt2")
        small = GPT2Config(
            vocab_size=len(tok), n_positions=80, n_embd=768, n_layer=1, n_head=12, n_inner=64
        )
        text_model = GPT2Model(small)
        extra = {"vocab_json": np.array(vocab_json), "merges_txt": np.array(merges_txt)}
        constant, mel_key, fixture, window = CONSTANT, MEL_KEY, FIXTURE, 7.0
    else:
        vocab_txt = train_wordpiece_files(tmp / "tok")
        tok = bert_tokenizer(vocab_txt, tmp / "bert-base-uncased")
        small = BertConfig(
            vocab_size=len(tok), hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
            intermediate_size=64, max_position_embeddings=110,
        )  # fmt: skip
        text_model = BertModel(small)
        extra = {"vocab_txt": np.array(vocab_txt)}
        constant, mel_key, fixture, window = CONSTANT_2022, MEL_KEY_2022, FIXTURE_2022, 5.0
    AutoModel.from_pretrained = classmethod(lambda cls, *a, **k: text_model)
    AutoTokenizer.from_pretrained = classmethod(lambda cls, *a, **k: tok)

    clips = dict(zip(("window.wav", "three.wav"), make_audio(window), strict=True))
    stub = types.ModuleType("torchaudio")
    stub.load = lambda path: (torch.from_numpy(clips[str(path)])[None, :], SR)
    stub.transforms = types.ModuleType("torchaudio.transforms")
    sys.modules["torchaudio"] = stub
    sys.modules["torchaudio.transforms"] = stub.transforms
    # the package's own CLAP class, built as load_clap builds it; its random state becomes
    # the release-format checkpoint the wrapper then loads
    import msclap
    import yaml
    from msclap.CLAPWrapper import CLAPWrapper

    config = Path(msclap.__file__).parent / "configs" / f"config_{version}.yml"
    args = types.SimpleNamespace(**yaml.safe_load(config.read_text()))
    from msclap.models.clap import CLAP

    clap = CLAP(
        audioenc_name=args.audioenc_name, sample_rate=args.sampling_rate,
        window_size=args.window_size, hop_size=args.hop_size, mel_bins=args.mel_bins,
        fmin=args.fmin, fmax=args.fmax, classes_num=args.num_classes, out_emb=args.out_emb,
        text_model=args.text_model, transformer_embed_dim=args.transformer_embed_dim,
        d_proj=args.d_proj,
    )  # fmt: skip
    state = clap.state_dict()
    shapes = {}
    with torch.no_grad():
        for key, value in state.items():
            if key.startswith(constant) or key.endswith(COMPUTED) or not value.is_floating_point():
                continue
            value.copy_(torch.from_numpy(fixture_tensor(key, tuple(value.shape))))
            shapes[key] = list(value.shape)
    torch.save({"model": state}, tmp / "CLAP_weights_random.pth")  # the release's format

    wrapper = CLAPWrapper(model_fp=str(tmp / "CLAP_weights_random.pth"), version=version)
    audio = wrapper.get_audio_embeddings(list(clips), resample=True).numpy()
    text = wrapper.get_text_embeddings(TEXTS).numpy()
    np.savez_compressed(
        fixture,
        audio_embed=audio.astype(np.float32),
        text_embed=text.astype(np.float32),
        shapes=np.array(json.dumps(shapes)),
        mel_bank=state[mel_key].numpy().astype(np.float32),
        **extra,
    )
    print(f"wrote {fixture}: audio {audio.shape}, text {text.shape}, {len(shapes)} tensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "2023")
