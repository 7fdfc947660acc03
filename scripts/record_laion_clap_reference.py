"""Record the ``laion-clap`` package's own inference on random weights, for
tests/test_laion_clap_parity.py (tests/fixtures/laion_clap_reference.npz, and with
``--fusion`` tests/fixtures/laion_clap_fusion_reference.npz).

laion-clap 1.1.7 cannot be installed beside melodex (it pins numpy 1.x), so run this in a side
environment. Unfused::

    python3.11 -m venv /tmp/sidevenv
    /tmp/sidevenv/bin/pip install torch==2.13.0 && /tmp/sidevenv/bin/pip install laion-clap==1.1.7
    HF_HUB_OFFLINE=1 /tmp/sidevenv/bin/python scripts/record_laion_clap_reference.py

Fusion computes its mel with torchaudio and shrinks long clips with torchvision, so it needs a
torch that both have wheels for (torch 2.9.1 here; torchaudio has none for 2.13)::

    python3 -m venv /work/side/laionfusion
    /work/side/laionfusion/bin/pip install torch==2.9.1 torchvision==0.24.1
    /work/side/laionfusion/bin/pip install torch==2.9.1 'torchaudio==2.9.*'
    /work/side/laionfusion/bin/pip install laion-clap==1.1.7
    HF_HUB_OFFLINE=1 /work/side/laionfusion/bin/python scripts/record_laion_clap_reference.py --fusion

``--fusion`` records ``CLAP_Module(enable_fusion=True, amodel='HTSAT-tiny')`` on one batch of
a 4 s clip (repeat-padded, ``longer`` False) and a 23 s clip (``longer`` True: the shrunk whole
mel plus three 10 s mel crops). The package picks each crop's start at random in one third of
the possible starts (``np.random.choice``); the recorder seeds numpy, replays the same draws
to record the three starts, and the test hands melodex those starts.

Offline there is no roberta-base: the package's ``RobertaModel.from_pretrained('roberta-base')``
and ``RobertaTokenizer.from_pretrained('roberta-base')`` are replaced by a one-layer RoBERTa
(hidden 768, 12 heads) and a byte-level BPE tokenizer trained on a few sentences (its files go
into the fixture). Unfused, torchvision/torchaudio (only for training and fusion) are stubbed.
Every other line that runs is the package's: ``CLAP_Module(enable_fusion=..., amodel=
'HTSAT-tiny')``, ``get_audio_embedding_from_data`` and ``get_text_embedding``.

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
FIXTURE = ROOT / "tests" / "fixtures" / "laion_clap_reference.npz"
FUSION_FIXTURE = ROOT / "tests" / "fixtures" / "laion_clap_fusion_reference.npz"
#: numpy's global seed before the fused batch (the package draws the long clip's crops from it)
CROP_SEED = 1234
CHUNK_FRAMES = 480000 // 480 + 1
SR = 48000
TEXTS = [
    "calm solo piano",
    "a reggae guitar with latin percussion and a trumpet",
    "heavy metal drums and distorted electric guitar, loud",
]
SENTENCES = [
    "calm solo piano with soft dynamics",
    "loud distorted electric guitar riff, heavy metal drums",
    "an orchestra plays a slow romantic waltz with strings and horns",
    "upbeat electronic dance music with synth bass and claps",
    "a jazz saxophone improvises over walking bass and brushed drums",
    "folk fiddle tune, a reel in D major with accordion and banjo",
    "reggae guitar skank, latin percussion, church organ, trumpet fanfare",
]
#: Release keys the reference keeps as the package computes them (STFT and mel constants,
#: the shifted windows' attention masks): randomising them would test another network.
CONSTANT = ("audio_branch.spectrogram_extractor.", "audio_branch.logmel_extractor.")
COMPUTED = (".attn_mask",)


def fixture_tensor(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The random value of one parameter: seeded by its name, scaled so activations stay sane."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    n = rng.standard_normal(shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        value = 0.5 + rng.random(shape)
    elif leaf.startswith("logit_scale"):
        value = np.full(shape, np.log(1 / 0.07))
    elif ("norm" in key.lower() or "bn0" in key) and leaf == "weight":
        value = 1 + 0.1 * n
    elif len(shape) >= 2:
        value = n / np.sqrt(max(int(np.prod(shape[1:])), 1))
    else:
        value = 0.1 * n
    return value.astype(np.float32)


def make_audio() -> list[np.ndarray]:
    """A 10 s clip (one window) and a 4 s clip (repeat-padded), 48 kHz, inside [-1, 1]."""
    rng = np.random.default_rng(7)
    out = []
    for seconds, hz in ((10.0, 330.0), (4.0, 523.0)):
        t = np.arange(int(seconds * SR)) / SR
        y = 0.4 * np.sin(2 * np.pi * hz * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
        out.append((y + 0.02 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def make_fusion_audio() -> list[np.ndarray]:
    """A 4 s clip (shorter than a window) and a 23 s clip (longer: fusion's crops), 48 kHz."""
    rng = np.random.default_rng(11)
    out = []
    for seconds, hz in ((4.0, 440.0), (23.0, 262.0)):
        t = np.arange(int(seconds * SR)) / SR
        y = (
            0.4
            * np.sin(2 * np.pi * hz * t * (1 + 0.02 * t))
            * (1 + np.sin(2 * np.pi * 0.3 * t))
            / 2
        )
        out.append((y + 0.02 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def replay_crop_starts(n_samples: int) -> list[int]:
    """The three crop starts the package draws for a clip of ``n_samples`` after
    ``np.random.seed(CROP_SEED)`` (get_audio_features' own ``array_split`` + ``choice``)."""
    total = n_samples // 480 + 1
    ranges = np.array_split(list(range(0, total - CHUNK_FRAMES + 1)), 3)
    ranges = [r if len(r) else [0] for r in ranges]
    state = np.random.get_state()
    np.random.seed(CROP_SEED)
    starts = [int(np.random.choice(r)) for r in ranges]
    np.random.set_state(state)
    return starts


def train_tokenizer_files(folder: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        SENTENCES * 4,
        vocab_size=300,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))


def roberta_tokenizer(vocab_json: str, merges_txt: str):  # noqa: ANN201
    from transformers import RobertaTokenizerFast

    merges = [tuple(x.split()) for x in merges_txt.splitlines() if x and not x.startswith("#")]
    return RobertaTokenizerFast(vocab=json.loads(vocab_json), merges=merges)


def main(fusion: bool = False) -> None:
    import torch
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    tmp = Path("/tmp/laion_clap_reference")
    train_tokenizer_files(tmp / "tok")
    vocab_json = (tmp / "tok" / "vocab.json").read_text()
    merges_txt = (tmp / "tok" / "merges.txt").read_text()
    tok = roberta_tokenizer(vocab_json, merges_txt)
    small = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=64,
        max_position_embeddings=80,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    RobertaModel.from_pretrained = classmethod(lambda cls, *a, **k: RobertaModel(small))
    RobertaTokenizer.from_pretrained = classmethod(lambda cls, *a, **k: tok)

    def stub(name: str, **attrs: object) -> None:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module

    names = "Normalize Compose RandomResizedCrop InterpolationMode ToTensor Resize CenterCrop"
    if not fusion:  # fusion runs the real torchvision and torchaudio
        stub("torchvision")
        stub("torchvision.ops")
        stub("torchvision.ops.misc", FrozenBatchNorm2d=torch.nn.Module)
        stub("torchvision.datasets")
        stub("torchvision.transforms", **dict.fromkeys(names.split()))
        stub("torchaudio")
    import laion_clap

    clap = laion_clap.CLAP_Module(enable_fusion=fusion, device="cpu", amodel="HTSAT-tiny")
    state = clap.model.state_dict()
    shapes = {}
    with torch.no_grad():
        for key, value in state.items():
            if key.startswith(CONSTANT) or key.endswith(COMPUTED) or not value.is_floating_point():
                continue
            value.copy_(torch.from_numpy(fixture_tensor(key, tuple(value.shape))))
            shapes[key] = list(value.shape)
    # the release format: {'state_dict': {'module.' + key: tensor}}
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, tmp / "ckpt.pt")
    clips = make_fusion_audio() if fusion else make_audio()
    extra = {}
    if fusion:
        extra["crop_starts"] = np.array(replay_crop_starts(len(clips[1])), np.int64)
        np.random.seed(CROP_SEED)
    audio = clap.get_audio_embedding_from_data(clips)
    text = clap.get_text_embedding(TEXTS)
    out = FUSION_FIXTURE if fusion else FIXTURE
    np.savez_compressed(
        out,
        **extra,
        audio_embed=audio.astype(np.float32),
        text_embed=text.astype(np.float32),
        shapes=np.array(json.dumps(shapes)),
        vocab_json=np.array(vocab_json),
        merges_txt=np.array(merges_txt),
    )
    print(f"wrote {out}: audio {audio.shape}, text {text.shape}, {len(shapes)} tensors")


if __name__ == "__main__":
    main(fusion="--fusion" in sys.argv[1:])
