"""Released word vectors (word2vec text and binary formats) and phrase vectors for multi-word
tags: "smooth jazz" is one token with its own vector, not the mean of "smooth" and "jazz"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from melodex.encoders.text_trainable import build_text_encoder
from melodex.encoders.word2vec import load_word_vectors
from melodex.errors import ModelLoadError
from melodex.text import Vocabulary

WORDS = ["jazz", "Smooth_Jazz", "smooth", "piano", "SMOOTH", "deep_house_music"]


def _vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(len(WORDS), 6)).astype(np.float32)


def _write(folder: Path) -> tuple[Path, Path]:
    vecs = _vectors()
    text = folder / "vectors.txt"
    lines = [f"{len(WORDS)} 6"] + [
        w + " " + " ".join(repr(float(v)) for v in row) for w, row in zip(WORDS, vecs, strict=True)
    ]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    binary = folder / "vectors.bin"
    blob = f"{len(WORDS)} 6\n".encode()
    for w, row in zip(WORDS, vecs, strict=True):
        blob += w.encode() + b" " + row.astype("<f4").tobytes() + b"\n"
    binary.write_bytes(blob)
    return text, binary


def test_text_and_binary_word2vec_load_the_same_vectors(tmp_path: Path) -> None:
    text, binary = _write(tmp_path)
    a, b = load_word_vectors(text), load_word_vectors(binary)
    vecs = _vectors()
    # lower-cased; the first spelling wins ("smooth" before "SMOOTH")
    assert a.words == b.words == ["jazz", "smooth_jazz", "smooth", "piano", "deep_house_music"]
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-6)
    np.testing.assert_allclose(b["smooth_jazz"], vecs[1])
    np.testing.assert_allclose(b["smooth"], vecs[2])
    assert len(load_word_vectors(binary, limit=2)) == 2
    (tmp_path / "bad.txt").write_text("not a header\n")
    with pytest.raises(ModelLoadError, match="header"):
        load_word_vectors(tmp_path / "bad.txt")


def test_multi_word_tags_use_their_phrase_vectors(tmp_path: Path) -> None:
    _, binary = _write(tmp_path)
    w2v = load_word_vectors(binary)
    phrases = [w for w in w2v.words if "_" in w]
    vocab = Vocabulary.build(
        ["smooth jazz", "smooth piano", "deep house music", "jazz"], phrases=phrases
    )
    assert "smooth_jazz" in vocab and "deep_house_music" in vocab
    assert vocab.decode(vocab.ids("a smooth jazz piano")) == ["<unk>", "smooth_jazz", "piano"]
    enc = build_text_encoder("mean_word_embedding", vocab=vocab.to_dict(), embedding_dim=6, w2v=w2v)
    with torch.no_grad():
        out = enc(enc.tokenize(["smooth jazz", "deep house music", "smooth piano"]))
    vecs = _vectors()
    np.testing.assert_allclose(out[0].numpy(), vecs[1], rtol=1e-6)  # the phrase's own vector
    np.testing.assert_allclose(out[1].numpy(), vecs[5], rtol=1e-6)
    np.testing.assert_allclose(out[2].numpy(), (vecs[2] + vecs[3]) / 2, rtol=1e-6)
