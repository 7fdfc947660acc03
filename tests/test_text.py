"""Tag clean-up, TTMR text representations and the word vocabulary."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from melodex.errors import MelodexError
from melodex.text import TextSampler, Vocabulary, merge_synonyms, normalize_tag, tokenize_words

# --- normalize_tag / merge_synonyms ----------------------------------------------------------


@pytest.mark.parametrize("raw", ["rock music", "rock", "rock songs", "rock tag", "Rock Music "])
def test_normalize_tag_seed_example_rock(raw):
    assert normalize_tag(raw) == "rock"


@pytest.mark.parametrize(
    "raw",
    ["drum & bass", "drum and bass", "Drum&Bass", "drum 'n' bass", "drum n bass", "drum'n'bass"],
)
def test_normalize_tag_and_expressions(raw):
    assert normalize_tag(raw) == "drum and bass"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Rock 'n' Roll", "rock and roll"),
        ("hip-hop", "hip hop"),
        ("80's", "80s"),
        ("post_rock!", "post rock"),
        ("  chill   out  ", "chill out"),
        ("music", "music"),  # a suffix word alone stays
        ("rock music tag", "rock"),  # suffixes drop repeatedly
        ("n sync", "n sync"),  # a leading n is not "and"
        ("world music", "world"),
    ],
)
def test_normalize_tag_rules(raw, expected):
    assert normalize_tag(raw) == expected


def test_normalize_tag_rejects_non_strings():
    with pytest.raises(TypeError, match="tag must be str"):
        normalize_tag(None)


def test_merge_synonyms_names_group_by_most_common_member():
    annotations = ["rock"] * 5 + ["rock music"] * 3 + ["rock songs", "rock tag"]
    annotations += ["drum and bass"] + ["drum & bass"] * 2 + ["jazz"]
    groups = merge_synonyms(annotations)
    assert {groups[t] for t in ["rock", "rock music", "rock songs", "rock tag"]} == {"rock"}
    assert groups["drum and bass"] == groups["drum & bass"] == "drum & bass"
    assert groups["jazz"] == "jazz"


def test_merge_synonyms_counts_and_extra_synonyms():
    counts = {"Hip-Hop": 10, "hiphop": 30, "hip hop music": 1, "rnb": 4, "r&b": 9}
    groups = merge_synonyms(counts, {"hiphop": "hip hop", "rnb": "R&B"})
    assert {groups[t] for t in ["Hip-Hop", "hiphop", "hip hop music"]} == {"hiphop"}
    assert groups["rnb"] == groups["r&b"] == "r&b"


def test_merge_synonyms_rejects_cycles():
    with pytest.raises(MelodexError, match="cycle"):
        merge_synonyms(["a"], {"a": "b", "b": "a"})


# --- TextSampler -----------------------------------------------------------------------------

TAGS = ["rock", "guitar", "energetic", "90s", "male vocal", "distortion"]
CAPTION = [{"kind": "caption", "text": "a loud rock song with distorted guitars"}]


def test_stochastic_k_in_range_and_subset_of_item_tags():
    sampler = TextSampler("stochastic", rng=np.random.default_rng(0))
    for _ in range(500):
        parts = sampler.sample([], TAGS).split(", ")
        assert 1 <= len(parts) <= len(TAGS)
        assert len(set(parts)) == len(parts)
        assert set(parts) <= set(TAGS)


def test_stochastic_k_is_uniform():
    sampler = TextSampler("stochastic", rng=np.random.default_rng(1))
    draws = 6000
    counts = Counter(len(sampler.sample(CAPTION, TAGS).split(", ")) for _ in range(draws))
    assert sorted(counts) == list(range(1, len(TAGS) + 1))
    expected = draws / len(TAGS)
    chi2 = sum((counts[k] - expected) ** 2 / expected for k in counts)
    assert chi2 < 20.5  # chi-square, 5 degrees of freedom, p = 0.001
    # every tag is equally likely to appear
    tag_counts = Counter(t for _ in range(draws) for t in sampler.sample(CAPTION, TAGS).split(", "))
    assert max(tag_counts.values()) / min(tag_counts.values()) < 1.15


def test_sampler_deterministic_by_seed():
    def run(seed, mode):
        sampler = TextSampler(mode, rng=np.random.default_rng(seed))
        return [sampler.sample(CAPTION, TAGS) for _ in range(50)]

    assert run(7, "stochastic") == run(7, "stochastic")
    assert run(7, "stochastic") != run(8, "stochastic")
    assert run(3, "tag") == run(3, "tag")


def test_tag_mode_gives_one_tag():
    sampler = TextSampler("tag", rng=np.random.default_rng(0))
    seen = {sampler.sample(CAPTION, TAGS) for _ in range(300)}
    assert seen == set(TAGS)


def test_sentence_mode_uses_captions_else_all_tags_shuffled():
    texts = [
        *CAPTION,
        {"kind": "caption", "text": "second caption"},
        {"kind": "metadata", "text": "m"},
    ]
    sampler = TextSampler("sentence", rng=np.random.default_rng(0))
    assert {sampler.sample(texts, TAGS) for _ in range(50)} == {
        CAPTION[0]["text"],
        "second caption",
    }
    orders = {sampler.sample([], TAGS) for _ in range(50)}
    assert all(sorted(o.split(", ")) == sorted(TAGS) for o in orders)
    assert len(orders) > 1  # shuffled afresh


def test_sentence_kinds_and_input_shapes():
    meta = TextSampler("sentence", rng=np.random.default_rng(0), sentence_kinds=("metadata",))
    assert meta.sample({"metadata": "by the beatles"}, []) == "by the beatles"
    item = {"id": "x", "texts": CAPTION, "tags": ["jazz"]}
    assert TextSampler("tag", rng=np.random.default_rng(0)).sample(item) == "jazz"
    assert TextSampler("sentence", rng=np.random.default_rng(0)).sample(item) == CAPTION[0]["text"]


def test_stochastic_without_tags_keeps_caption_word_order():
    sampler = TextSampler("stochastic", rng=np.random.default_rng(0))
    words = CAPTION[0]["text"].split()
    lengths = set()
    for _ in range(200):
        out = sampler.sample(CAPTION, []).split()
        positions = [words.index(w) for w in out]
        assert positions == sorted(positions)
        lengths.add(len(out))
    assert lengths == set(range(1, len(words) + 1))


def test_sampler_errors():
    with pytest.raises(MelodexError, match="unknown text mode"):
        TextSampler("words", rng=np.random.default_rng(0))
    with pytest.raises(MelodexError, match="no tags and no text"):
        TextSampler("tag", rng=np.random.default_rng(0)).sample(
            [{"kind": "metadata", "text": "m"}], []
        )
    with pytest.raises(MelodexError, match="kind"):
        TextSampler("sentence", rng=np.random.default_rng(0)).sample(["just a string"], [])


# --- Vocabulary ------------------------------------------------------------------------------


def test_tokenize_words():
    assert tokenize_words("Hip-Hop & R&B, don't STOP 80's") == [
        "hip", "hop", "r", "b", "don't", "stop", "80's",
    ]  # fmt: skip


def test_vocabulary_build_encode_and_unknown_words():
    vocab = Vocabulary.build(["Rock guitar rock", "rock piano", "rare"], min_count=2)
    assert vocab.tokens == ["<pad>", "<unk>", "rock"]
    vocab = Vocabulary.build(["rock guitar rock", "rock piano guitar", "rare"], max_size=4)
    assert vocab.tokens == ["<pad>", "<unk>", "rock", "guitar"]  # by count, specials count
    ids, lengths = vocab.encode(["rock banjo", "", "guitar rock rock"])
    assert ids.dtype == torch.long and ids.shape == (3, 3)
    assert ids.tolist() == [[2, 1, 0], [0, 0, 0], [3, 2, 2]]
    assert lengths.tolist() == [2, 0, 3]
    assert vocab.decode(ids[0]) == ["rock", "<unk>"]
    ids, lengths = vocab.encode(["guitar rock rock"], max_length=2)
    assert ids.tolist() == [[3, 2]] and lengths.tolist() == [2]


def test_vocabulary_round_trip(tmp_path):
    vocab = Vocabulary.build(["café jazz", "jazz fusion", "naïve"])
    path = vocab.save(tmp_path / "vocab.json")
    again = Vocabulary.load(path)
    assert again == vocab and again.tokens == vocab.tokens
    assert torch.equal(again.encode(["jazz naïve x"])[0], vocab.encode(["jazz naïve x"])[0])


def test_vocabulary_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other", "tokens": []}))
    with pytest.raises(MelodexError, match="bad.json.*not a vocabulary"):
        Vocabulary.load(bad)
    with pytest.raises(MelodexError, match="cannot read vocabulary"):
        Vocabulary.load(tmp_path / "missing.json")
    with pytest.raises(MelodexError, match="must start with"):
        Vocabulary(["a", "b"])
    with pytest.raises(TypeError, match="list of texts"):
        Vocabulary.build(["a"]).encode("a")
