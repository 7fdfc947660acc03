"""Complete offline CLAP folders with random weights, made in seconds: tiny ``ClapConfig``,
a byte-level BPE tokenizer trained on a few sentences, and the CLAP feature extractor.

Used by the clap-hf parity and end-to-end tests and by ``bench/bench_models.py`` (which asks
for the released sizes with ``tiny=False``).
"""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "calm solo piano with soft dynamics",
    "loud distorted electric guitar riff, heavy metal drums",
    "an orchestra plays a slow romantic waltz with strings and horns",
    "upbeat electronic dance music with synth bass and claps",
    "a jazz saxophone improvises over walking bass and brushed drums",
    "folk fiddle tune, a reel in D major with accordion and banjo",
    "reggae guitar skank, latin percussion, church organ, trumpet fanfare",
]


def train_tokenizer(folder: Path, *, vocab_size: int = 300):  # noqa: ANN201
    """A RoBERTa-style byte-level BPE tokenizer trained on :data:`SENTENCES`, saved in folder."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        SENTENCES * 4,
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    # transformers 5 ignores vocab_file/merges_file here: give the vocab and merges themselves
    vocab = json.loads((folder / "vocab.json").read_text())
    lines = (folder / "merges.txt").read_text().splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#")]
    tok = RobertaTokenizerFast(vocab=vocab, merges=merges, model_max_length=77)
    tok.save_pretrained(str(folder))
    return tok


def tiny_clap_config(*, vocab_size: int, fusion: bool = False, tiny: bool = True):  # noqa: ANN201
    """A ClapConfig: tiny towers (seconds to run), or the released HTSAT-tiny + RoBERTa-base."""
    from transformers import ClapAudioConfig, ClapConfig, ClapTextConfig

    if not tiny:
        text = ClapTextConfig(vocab_size=vocab_size)
        audio = ClapAudioConfig(enable_fusion=fusion, fusion_type="aff_2d" if fusion else None)
        return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict())
    text = ClapTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=80,
        projection_dim=16,
    )
    audio = ClapAudioConfig(
        hidden_size=64,
        patch_embeds_hidden_size=8,
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 2, 2, 4],
        num_hidden_layers=4,
        projection_dim=16,
        enable_fusion=fusion,
        fusion_type="aff_2d" if fusion else None,
    )
    return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)


def randomize(model) -> None:  # noqa: ANN001
    """Every parameter random (transformers' init leaves biases 0 and norms 1, and its small
    weights make a tiny text tower all but ignore the tokens after the first)."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.is_floating_point():
                continue
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif p.ndim >= 2:
                p.copy_(torch.randn_like(p) / max(p.shape[-1], 1) ** 0.5)
            else:
                p.copy_(0.1 * torch.randn_like(p))


def make_clap_folder(
    folder: Path, *, fusion: bool = False, tiny: bool = True, seed: int = 0
) -> Path:
    """Save a random-weight ClapModel + ClapProcessor with save_pretrained; returns folder."""
    import torch
    from transformers import ClapFeatureExtractor, ClapModel, ClapProcessor

    tok = train_tokenizer(folder / "_tokenizer")
    torch.manual_seed(seed)
    model = ClapModel(tiny_clap_config(vocab_size=len(tok), fusion=fusion, tiny=tiny)).eval()
    if tiny:
        randomize(model)
    extractor = ClapFeatureExtractor(truncation="fusion" if fusion else "rand_trunc")
    model.save_pretrained(str(folder))
    ClapProcessor(feature_extractor=extractor, tokenizer=tok).save_pretrained(str(folder))
    return folder
