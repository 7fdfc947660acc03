"""Evaluation tasks on tiny synthetic setups whose metrics are known exactly.

The fake joint model one-hot encodes keywords (as sentence-transformers' evaluator tests do): a
text's vector is the normalised sum of the keywords it contains, a track's vector is given by the
test. So every score, rank and metric can be worked out by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melodex.errors import MelodexError
from melodex.evaluate import tasks as T
from melodex.evaluate.embed import AudioEmbeddings, embed_items
from melodex.models import AudioEmbedding, ModelConfig

KEYWORDS = ("piano", "guitar", "drums", "violin")


def onehot(*words: str) -> np.ndarray:
    v = np.array([w in words for w in KEYWORDS], dtype=np.float32)
    n = np.linalg.norm(v)
    return v / n if n else v


class KeywordModel:
    """Text -> normalised keyword counts; audio -> keywords in the file name (``piano-1.wav``)."""

    def __init__(self) -> None:
        self.config = ModelConfig(name="keywords", architecture="fake", sample_rate=8000, dim=4)
        self.calls: list[tuple[str, int | None]] = []

    @property
    def dim(self) -> int:
        return 4

    @property
    def identity(self) -> str:
        return "keywords@0"

    @property
    def tag_names(self) -> list[str]:
        return list(KEYWORDS)

    def encode_text(self, texts, *, batch_size=64, normalize=True):  # noqa: ANN001, ANN201
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        out = np.stack([onehot(*[w for w in KEYWORDS if w in t.lower()]) for t in batch])
        return out[0] if single else out

    def _emb(self, vec: np.ndarray, n: int) -> AudioEmbedding:
        return AudioEmbedding(vec, vec[None], np.zeros(1, np.float32), n / 8000, vec.copy())

    def embed_file(self, path, *, max_windows="config"):  # noqa: ANN001, ANN201
        self.calls.append(("file", max_windows))
        if not Path(path).is_file():
            raise FileNotFoundError(path)
        words = Path(path).stem.split("-")
        return self._emb(onehot(*words), sf.info(str(path)).frames)

    def embed_waveform(self, y, *, max_windows="config"):  # noqa: ANN001, ANN201
        self.calls.append(("waveform", max_windows, len(y)))
        return self._emb(onehot("violin"), len(y))


def item(i: str, audio: str = "", *, captions=(), tags=(), artist="", split="test", **extra):  # noqa: ANN001, ANN201
    texts = [{"kind": "caption", "text": c} for c in captions]
    return {"id": i, "audio": audio or f"{i}.wav", "start": None, "end": None, "texts": texts,
            "tags": list(tags), "artist": artist, "split": split, "extra": extra}  # fmt: skip


def embedded(vectors: dict[str, np.ndarray]) -> AudioEmbeddings:
    ids = list(vectors)
    v = np.stack([vectors[i] for i in ids])
    return AudioEmbeddings("keywords@0", ids, v, v.copy())


MODEL = KeywordModel()


def test_caption_retrieval_one_query_per_caption_and_pessimistic_ties():
    items = [
        item("t0", captions=["solo piano", "a piano piece"]),
        item("t1", captions=["guitar strumming"]),
        item("t2", captions=["violin solo"]),  # violin is orthogonal to every track: all tied
    ]
    emb = embedded({"t0": onehot("piano"), "t1": onehot("guitar"), "t2": onehot("drums")})
    r = T.caption_retrieval(MODEL, items, audio_embeddings=emb)
    assert r.metrics["n_queries"] == 4 and r.metrics["n_items"] == 3
    assert r.per_query["rank"].tolist() == [1, 1, 1, 3]  # tied with both others -> last
    assert r.metrics["R@1"] == pytest.approx(0.75)
    assert r.metrics["MRR"] == pytest.approx((3 + 1 / 3) / 4)
    assert r.metrics["R@1_ci_low"] <= 0.75 <= r.metrics["R@1_ci_high"]
    assert r.details["queries"] == [
        "solo piano",
        "a piano piece",
        "guitar strumming",
        "violin solo",
    ]


def test_a_caption_shared_by_two_tracks_is_one_query_with_both_relevant():
    items = [
        item("t0", captions=["piano"]),
        item("t1", captions=["piano"]),
        item("t2", captions=["guitar"]),
    ]
    emb = embedded({"t0": onehot("piano"), "t1": onehot("piano"), "t2": onehot("guitar")})
    r = T.caption_retrieval(MODEL, items, audio_embeddings=emb)
    assert r.metrics["n_queries"] == 2 and r.metrics["R@1"] == 1.0


def test_track_to_text_relevant_are_the_tracks_own_texts():
    items = [item("t0", captions=["piano", "drums"]), item("t1", captions=["guitar"])]
    emb = embedded({"t0": onehot("drums"), "t1": onehot("piano")})
    r = T.track_to_text_retrieval(MODEL, items, audio_embeddings=emb)
    # t0 (drums) finds its "drums" first; t1 (piano) ranks t0's "piano" first, and its own
    # "guitar" scores 0 like t0's "drums", so (ties pessimistic) it comes third
    assert r.per_query["rank"].tolist() == [1, 3]
    assert r.details["n_texts"] == 3


def tag_items():
    return [
        item("t0", tags=["piano"]),
        item("t1", tags=["guitar", "piano music"]),
        item("t2", tags=["guitar songs"]),
        item("t3", tags=["drums"]),
    ], embedded(
        {
            "t0": onehot("piano"),
            "t1": onehot("guitar", "piano"),
            "t2": onehot("guitar"),
            "t3": onehot("violin"),  # "drums" query scores 0 everywhere: AP 1/4, ROC 1/2
        }
    )


def test_tag_retrieval_merges_synonyms_and_averages_over_tags():
    items, emb = tag_items()
    r = T.tag_retrieval(MODEL, items, audio_embeddings=emb)
    assert r.details["queries"] == ["guitar", "piano", "drums"]  # by positives, then name
    assert r.details["positives"] == [2, 2, 1]
    assert r.per_query["AP"].tolist() == [1.0, 1.0, 0.25]
    assert r.metrics["mAP"] == pytest.approx(0.75)
    assert r.metrics["ROC-AUC"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert r.metrics["PR-AUC"] == pytest.approx(0.75)
    assert r.metrics["n_tags"] == 3


def test_tag_vocabulary_options():
    items, emb = tag_items()
    raw = T.tag_retrieval(MODEL, items, audio_embeddings=emb, merge_synonyms=False)
    assert sorted(raw.details["queries"]) == [
        "drums",
        "guitar",
        "guitar songs",
        "piano",
        "piano music",
    ]
    top = T.tag_retrieval(MODEL, items, audio_embeddings=emb, top_n=1)
    assert top.details["queries"] == ["guitar"]
    assert (
        T.tag_retrieval(MODEL, items, audio_embeddings=emb, min_positives=2).metrics["n_tags"] == 2
    )
    with pytest.raises(T.TaskSkippedError, match="no tag with >= 5"):
        T.tag_retrieval(MODEL, items, audio_embeddings=emb, min_positives=5)


def test_zero_shot_averages_prompts_and_counts_ties_as_misses():
    items = [
        item("t0", genre="piano"),
        item("t1", genre="guitar"),
        item("t2", genre="drums"),  # violin audio: every class scores 0 -> a miss
        item("t3"),  # no label: left out
    ]
    emb = embedded(
        {
            i: onehot(w)
            for i, w in zip(
                ["t0", "t1", "t2", "t3"], ["piano", "guitar", "violin", "piano"], strict=True
            )
        }
    )
    r = T.zero_shot_classification(MODEL, items, audio_embeddings=emb, field="extra.genre")
    assert r.per_query["top1"].tolist() == [1.0, 1.0, 0.0]
    assert r.metrics["top1"] == pytest.approx(2 / 3)
    assert "top5" not in r.metrics  # only 3 classes
    assert r.metrics["n_unlabelled"] == 1
    assert r.details["classes"] == ["drums", "guitar", "piano"]
    by_tags = T.zero_shot_classification(
        MODEL,
        [
            item("a", tags=["piano", "x"]),
            item("b", tags=["guitar"]),
            item("c", tags=["piano", "guitar"]),
        ],
        audio_embeddings=embedded(
            {"a": onehot("piano"), "b": onehot("guitar"), "c": onehot("piano")}
        ),
        tag_group=["piano", "guitar"],
    )
    assert by_tags.metrics["n_items"] == 2 and by_tags.metrics["top1"] == 1.0  # c has both: out
    with pytest.raises(T.TaskSkippedError, match="label"):
        T.zero_shot_classification(MODEL, items, audio_embeddings=emb, templates=["a song"])
    with pytest.raises(T.TaskSkippedError, match=">= 2 classes"):
        T.zero_shot_classification(MODEL, items, audio_embeddings=emb, field="extra.nothing")


def test_triplets_are_seeded_and_follow_the_labels():
    items = [item("a1", tags=["piano"]), item("a2", tags=["piano"]), item("b", tags=["guitar"])]
    emb = embedded({"a1": onehot("piano"), "a2": onehot("piano"), "b": onehot("guitar")})
    r = T.tag_triplets(MODEL, items, audio_embeddings=emb, n_triplets=50, seed=1)
    assert r.metrics["accuracy"] == 1.0 and r.details["label_counts"] == {"piano": 50}
    flat = embedded({k: onehot("piano") for k in ("a1", "a2", "b")})
    same = T.tag_triplets(MODEL, items, audio_embeddings=flat, n_triplets=20)
    assert same.metrics["accuracy"] == 0.5  # constant similarity = chance, ties count 1/2
    mixed = [*items, item("c", tags=["piano", "guitar"])]
    vec = {
        "a1": onehot("piano"),
        "a2": onehot("drums"),
        "b": onehot("guitar"),
        "c": onehot("violin"),
    }
    one = T.tag_triplets(MODEL, mixed, audio_embeddings=embedded(vec), seed=3)
    two = T.tag_triplets(MODEL, mixed, audio_embeddings=embedded(vec), seed=3)
    assert np.array_equal(one.per_query["correct"], two.per_query["correct"])


def test_same_artist_retrieval_excludes_self_and_placeholder_artists():
    items = [
        item("x1", artist="X"), item("x2", artist="x "), item("y1", artist="Y"),
        item("y2", artist="Y"), item("trad", artist="Traditional"),
    ]  # fmt: skip
    vec = {"x1": onehot("piano"), "x2": onehot("piano"), "y1": onehot("guitar"),
           "y2": onehot("violin"), "trad": onehot("drums")}  # fmt: skip
    r = T.same_artist_retrieval(MODEL, items, audio_embeddings=embedded(vec))
    assert r.metrics["n_queries"] == 4  # "Traditional" asks nothing
    assert r.details["queries"] == ["x1", "x2", "y1", "y2"]
    # x1, x2 find each other first; y1, y2 score 0 with each other, tied with 3 -> rank 4
    assert r.per_query["rank"].tolist() == [1, 1, 4, 4]
    assert r.metrics["nDCG@200"] == pytest.approx((2 + 2 / math.log2(5)) / 4)
    with pytest.raises(T.TaskSkippedError, match="no artist has two tracks"):
        T.same_artist_retrieval(MODEL, items[1:3], audio_embeddings=embedded(vec))


def test_unseen_queries_are_combinations_no_seen_track_carries():
    seen = [item("s", tags=["piano", "slow"], split="train")]
    items = [
        item("t0", tags=["piano", "fast"]),
        item("t1", tags=["piano", "slow"]),
        item("t2", tags=["guitar", "fast"]),
    ]
    emb = embedded({"t0": onehot("piano"), "t1": onehot("piano"), "t2": onehot("guitar")})
    r = T.unseen_query_retrieval(MODEL, items, audio_embeddings=emb, seen_items=seen)
    assert r.details["queries"] == ["fast and guitar", "fast and piano"]
    assert r.details["guaranteed_unseen"] is True
    # "fast and piano": t0 tied with t1 (both piano) -> rank 2; "fast and guitar": t2 first
    assert r.per_query["rank"].tolist() == [1, 2]
    assert r.metrics["R@1"] == 0.5


def test_parse_task_options():
    spec = T.parse_task('zeroshot:field=extra.form,templates=["{label}","{label} music, live"]')
    assert spec.options == {"field": "extra.form", "templates": ["{label}", "{label} music, live"]}
    assert T.parse_task("tag:top_n=null").options == {"top_n": None}
    with pytest.raises(MelodexError, match="unknown task 'nope'"):
        T.parse_task("nope")
    with pytest.raises(MelodexError, match=r"has no option\(s\) \['colour'\]"):
        T.parse_task("tag:colour=red")


def write_wav(path: Path, seconds: float, sr: int = 8000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    return path


def test_embed_items_caches_uses_every_window_honours_segments_and_lists_failures(tmp_path):
    write_wav(tmp_path / "piano.wav", 2.0)
    write_wav(tmp_path / "guitar-drums.wav", 3.0)
    items = [
        item("p", "piano.wav"),
        {**item("g", "guitar-drums.wav"), "start": 0.5, "end": 2.0},
        item("missing", "nothing.wav"),
    ]
    model = KeywordModel()
    calls = []
    emb = embed_items(model, items, root=tmp_path, cache_dir=tmp_path / "cache",
                      progress=lambda d, t, p: calls.append((d, t)))  # fmt: skip
    assert emb.ids == ["p", "g"] and emb.cache_hits == 0
    assert [f[0] for f in emb.failures] == ["missing"] and "nothing.wav" in emb.failures[0][1]
    assert calls == [(1, 3), (2, 3), (3, 3)]
    # every window (max_windows=None); the segment [0.5, 2.0) s decoded at the model's 8 kHz
    assert model.calls == [("file", None), ("waveform", None, 12000)]
    np.testing.assert_allclose(emb.vectors[0], onehot("piano"))
    again = embed_items(model, items, root=tmp_path, cache_dir=tmp_path / "cache")
    assert again.cache_hits == 2 and len(model.calls) == 2 and len(again.failures) == 1
    np.testing.assert_array_equal(again.vectors, emb.vectors)
    write_wav(tmp_path / "piano.wav", 2.5)  # new content -> new key
    embed_items(model, items[:1], root=tmp_path, cache_dir=tmp_path / "cache")
    assert len(model.calls) == 3


def test_run_tasks_records_skipped_tasks_and_uses_train_as_seen(tmp_path):
    for name in ("piano", "guitar", "piano-guitar"):
        write_wav(tmp_path / f"{name}.wav", 0.5)
    manifest = [
        item("a", "piano.wav", captions=["piano"], tags=["piano", "slow"]),
        item("b", "guitar.wav", captions=["guitar"], tags=["guitar", "slow"]),
        item(
            "c",
            "piano-guitar.wav",
            captions=["piano and guitar"],
            tags=["piano", "guitar"],
            split="train",
        ),
    ]
    run = T.run_tasks({"kw": KeywordModel()}, manifest, "test", ["caption", "same-artist", "unseen"],
                      root=tmp_path)  # fmt: skip
    (m,) = run.models
    assert set(m.results) == {"caption", "unseen"} and "same-artist" in m.skipped
    assert m.results["caption"].metrics["R@1"] == 1.0
    assert [it["id"] for it in run.seen_items] == ["c"]
    with pytest.raises(MelodexError, match="split 'valid' of the manifest is empty"):
        T.run_tasks([KeywordModel()], manifest, "valid", root=tmp_path)
