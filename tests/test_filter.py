"""Cross-modal relevance filtering: exact scores from a fake joint space, files, the real model."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from melodex.data.manifest import read_manifest, write_manifest
from melodex.errors import MelodexError
from melodex.mining.filter import (
    filter_items,
    filter_manifest,
    model_scorer,
    rebase_audio,
    vector_scorer,
)

# a 2-d joint space where every cosine is known: the track is (1, 0)
AUDIO = {"t1": np.array([1.0, 0.0]), "t2": np.array([0.0, 2.0])}  # t2 unnormalised on purpose
TEXT = {
    "match": [1.0, 0.0],  # t1: 1.0   t2: 0.0
    "orthogonal": [0.0, 1.0],  # t1: 0.0   t2: 1.0
    "opposite": [-1.0, 0.0],  # t1: -1.0  t2: 0.0
    "slanted": [0.6, -0.8],  # t1: 0.6   t2: -0.8
    "a, b": [-1.0, 0.0],  # tag text: never scored by default
}


def encode(texts: list[str]) -> np.ndarray:
    return np.array([TEXT[t] for t in texts], dtype=np.float32) * 3.0  # unnormalised too


def item(item_id: str, *texts: tuple[str, str], split: str = "train") -> dict:
    return {
        "id": item_id,
        "audio": f"audio/{item_id}.wav",
        "texts": [{"kind": k, "text": t} for k, t in texts],
        "tags": ["a", "b"],
        "split": split,
        "extra": {"bpm": 90},
    }


ITEMS = [
    item("t1", ("caption", "match"), ("caption", "opposite"), ("tag", "a, b"),
         ("mined", "slanted"), ("caption", "orthogonal")),
    item("t2", ("caption", "slanted"), ("tag", "a, b")),
    item("t3", ("caption", "match")),  # no audio vector: unscored
]  # fmt: skip


def scores_of(result) -> dict[tuple[str, str], float]:
    return {(p.item_id, p.text): p.score for p in result.pairs}


def test_vector_scorer_gives_exact_cosines():
    scorer = vector_scorer(AUDIO, encode)
    pairs = [(0, 0), (0, 1), (0, 3), (0, 4), (1, 0), (2, 0)]
    got = scorer(ITEMS, pairs)
    np.testing.assert_allclose(got[:5], [1.0, -1.0, 0.6, 0.0, -0.8], atol=1e-6)
    assert math.isnan(got[5])


def test_default_threshold_drops_negative_pairs_only():
    result = filter_items(ITEMS, vector_scorer(AUDIO, encode))
    assert scores_of(result)[("t1", "opposite")] == pytest.approx(-1.0)
    kept_t1 = next(it for it in result.kept if it["id"] == "t1")
    # zero cosine is kept (drop is strictly below the threshold); the tag text is never scored
    assert [t["text"] for t in kept_t1["texts"]] == ["match", "a, b", "slanted", "orthogonal"]
    assert kept_t1["extra"]["relevance"] == [1.0, None, 0.6, 0.0]
    assert kept_t1["extra"]["bpm"] == 90
    # t2 lost its only caption -> removed from kept, present in dropped
    assert result.removed_items == ["t2"]
    assert [it["id"] for it in result.kept] == ["t1", "t3"]
    dropped = {it["id"]: it for it in result.dropped}
    assert [t["text"] for t in dropped["t1"]["texts"]] == ["opposite"]
    assert dropped["t1"]["extra"]["relevance"] == [-1.0]
    assert dropped["t2"]["extra"]["relevance"] == [pytest.approx(-0.8)]
    c = result.counts
    assert (c["pairs"], c["scored_pairs"], c["unscored_pairs"]) == (6, 5, 1)
    assert (c["kept_pairs"], c["dropped_pairs"], c["removed_items"]) == (4, 2, 1)
    # the input is untouched
    assert len(ITEMS[0]["texts"]) == 5 and "relevance" not in ITEMS[0]["extra"]


@pytest.mark.parametrize(
    ("threshold", "kept_t1"),
    [(-1.0, 4), (-0.5, 3), (0.5, 2), (0.61, 1), (1.0, 1), (1.01, 0)],
)
def test_thresholds(threshold, kept_t1):
    result = filter_items(ITEMS, vector_scorer(AUDIO, encode), threshold=threshold)
    n = sum(not math.isnan(p.score) and p.kept for p in result.pairs if p.item_id == "t1")
    assert n == kept_t1


def test_kinds_and_keep_emptied():
    result = filter_items(ITEMS, vector_scorer(AUDIO, encode), kinds=("mined",))
    assert [p.text for p in result.pairs] == ["slanted"]
    result = filter_items(ITEMS, vector_scorer(AUDIO, encode), drop_emptied=False)
    t2 = next(it for it in result.kept if it["id"] == "t2")
    assert [t["kind"] for t in t2["texts"]] == ["tag"] and t2["extra"]["relevance"] == [None]


def test_examples_and_summary():
    result = filter_items(ITEMS, vector_scorer(AUDIO, encode))
    ex = result.examples(2)
    assert [p.score for p in ex["dropped"]] == pytest.approx([-1.0, -0.8])
    assert [p.score for p in ex["kept"]] == pytest.approx([1.0, 0.6])
    assert [p.score for p in ex["borderline"]] == pytest.approx([0.0, 0.6])
    assert result.score_summary()["min"] == pytest.approx(-1.0)


def test_bad_scorer_and_threshold_are_named():
    with pytest.raises(MelodexError, match="expected one per pair"):
        filter_items(ITEMS, lambda items, pairs: np.zeros(2))
    with pytest.raises(MelodexError, match="finite"):
        filter_items(ITEMS, vector_scorer(AUDIO, encode), threshold=float("nan"))
    wrong = vector_scorer({"t1": np.ones(3)}, encode)
    with pytest.raises(MelodexError, match="3-d vector"):
        filter_items(ITEMS[:1], wrong)


def test_self_filtering_callable_sees_current_model():
    """The self-filtering mode: the scorer reads the *current* vectors of a model in training."""
    state = {"t1": np.array([1.0, 0.0])}
    scorer = vector_scorer(state, encode)
    first = filter_items(ITEMS[:1], scorer)
    state["t1"] = np.array([-1.0, 0.0])  # the model moved
    second = filter_items(ITEMS[:1], scorer)
    assert scores_of(first)[("t1", "opposite")] == pytest.approx(-1.0)
    assert scores_of(second)[("t1", "opposite")] == pytest.approx(1.0)


def test_filter_manifest_writes_rebased_outputs(tmp_path):
    src = tmp_path / "data"
    (src / "audio").mkdir(parents=True)
    for i in ("t1", "t2", "t3"):
        (src / "audio" / f"{i}.wav").write_bytes(b"RIFF")
    write_manifest(src / "manifest.jsonl", ITEMS)
    kept, dropped = tmp_path / "out" / "kept.jsonl", tmp_path / "out" / "dropped.jsonl"
    result = filter_manifest(
        src / "manifest.jsonl",
        model=None,
        scorer=vector_scorer(AUDIO, encode),
        out_kept=kept,
        out_dropped=dropped,
    )
    assert result.counts["dropped_pairs"] == 2
    kept_items = read_manifest(kept)  # audio paths resolve from the new folder
    assert kept_items[0]["audio"] == "../data/audio/t1.wav"
    assert [it["id"] for it in read_manifest(dropped)] == ["t1", "t2"]
    line = json.loads(kept.read_text().splitlines()[0])
    assert line["extra"]["relevance_model"] == "scorer"


def test_rebase_keeps_absolute_paths(tmp_path):
    items = [{"id": "x", "audio": "/abs/x.wav"}, {"id": "y", "audio": "a/y.wav"}]
    out = rebase_audio(items, src_root=tmp_path / "a", dst_root=tmp_path / "b" / "c")
    assert out[0]["audio"] == "/abs/x.wav" and out[1]["audio"] == "../../a/a/y.wav"


@pytest.fixture(scope="module")
def demo6(tmp_path_factory) -> Path:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed")
    from melodex.data.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("demo6"), n_tracks=6, seconds=6)


def test_default_model_on_rendered_clips(demo6, base_model):
    """The real default model on real rendered audio: scores are the cosines, thresholds bite."""
    manifest, out = demo6, demo6.parent
    items = read_manifest(manifest)
    failures: list = []
    scorer = model_scorer(base_model, root=manifest.parent, cache_dir=out / "cache",
                          failures=failures)  # fmt: skip
    result = filter_items(items, scorer, scorer_name=base_model.identity)
    assert not failures
    scores = [p.score for p in result.pairs]
    assert len(scores) == sum(t["kind"] == "caption" for it in items for t in it["texts"])
    assert all(-1.0 <= s <= 1.0 for s in scores)
    # a pair's score is the cosine of the pooled track vector and the text vector
    p = result.pairs[0]
    track = next(it for it in items if it["id"] == p.item_id)
    vec = base_model.embed_file(manifest.parent / track["audio"], max_windows=None).vector
    text = base_model.encode_text([p.text], normalize=True)[0]
    assert p.score == pytest.approx(float(vec @ text), abs=1e-4)
    # everything at -1 is kept; a threshold above every score drops every pair
    assert filter_items(items, scorer, threshold=-1.0).counts["dropped_pairs"] == 0
    everything = filter_items(items, scorer, threshold=1.01)
    assert everything.kept == [] and len(everything.dropped) == len(items)


@pytest.mark.heavy  # renders and embeds with the real model
def test_cli_filter(demo6, tmp_path, monkeypatch, capsys):
    from melodex.cli import main

    monkeypatch.setenv("MELODEX_CACHE", str(tmp_path / "cache"))
    kept, dropped = tmp_path / "k" / "kept.jsonl", tmp_path / "d" / "dropped.jsonl"
    args = ["filter", str(demo6), "--model", "melodex-base", "--threshold", "0.2",
            "--out-kept", str(kept), "--out-dropped", str(dropped), "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)
    payload = json.loads(capsys.readouterr().out)
    c = payload["counts"]
    assert c["kept_pairs"] + c["dropped_pairs"] == c["pairs"] > 0
    assert payload["threshold"] == 0.2 and payload["model"].startswith("melodex-base")
    assert len(read_manifest(kept)) == c["kept_items"]
    if c["dropped_pairs"]:
        assert all(s < 0.2 for it in read_manifest(dropped) for s in it["extra"]["relevance"])
