"""The papers' protocols (TTMR++ OLGA artists, DIM-SIM triplets, the tag lists, bare-label
zero-shot) on the fixture releases, with a keyword model whose every score is known; conventions
through run_tasks and the report; ``melodex data load`` and ``melodex evaluate --conventions``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from melodex.cli import app
from melodex.errors import MelodexError
from melodex.evaluate import tasks as T
from melodex.evaluate.embed import AudioEmbeddings
from melodex.evaluate.report import markdown_report
from tests.loader_fixtures import write_audio
from tests.test_tasks import KeywordModel, embedded, item, onehot

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = KeywordModel()
OLGA = FIXTURES / "olga" / "olga-msd"


def olga_items(vectors: dict[str, np.ndarray]) -> tuple[list[dict], AudioEmbeddings]:
    items = [item(f"msd:{t}", track_id=t) for t in vectors]
    return items, embedded({f"msd:{t}": v for t, v in vectors.items()})


# ----------------------------------------------------------------------------- OLGA


def sklearn_ndcg_rows(gt: np.ndarray, scores: np.ndarray, k: int) -> float:
    from sklearn.metrics import ndcg_score

    return float(ndcg_score(gt, scores, k=k))


def test_ttmrpp_artist_follows_eval_olga():
    # artists (OLGA order) A, B, C(val), D(test), E(test), F(test, no tracks)
    vec = {
        "TRAAAAA128F0000001": onehot("piano"), "TRAAAAA128F0000002": onehot("guitar"),  # A
        "TRAAAAA128F0000003": onehot("guitar"),  # B
        "TRAAAAA128F0000004": onehot("drums"),  # C
        "TRAAAAA128F0000005": onehot("piano"),  # D
        "TRAAAAA128F0000006": onehot("guitar"),  # E (its second track is not embedded)
    }  # fmt: skip
    items, emb = olga_items(vec)
    r = T.ttmrpp_artist_retrieval(MODEL, items, audio_embeddings=emb, olga=OLGA)
    assert (
        r.details["convention"]["name"] == "melodex"
    )  # the function's default; the spec's is ttmr-pp
    assert r.details["n_gallery_artists"] == 5 and r.details["n_tracks_missing"] == 1
    # the same computation by hand, as eval_olga.py does it
    a = onehot("piano") + onehot("guitar")
    artist_emb = np.stack([a / np.linalg.norm(a), onehot("guitar"), onehot("drums"),
                           onehot("piano"), onehot("guitar")])  # fmt: skip
    # A + A.T of the fixture edges (0,1) (3,0) (0,3) (4,1) (4,2) (5,4), rows D, E; columns A..E
    gt_audio = np.array([[2, 0, 0, 0, 0], [0, 1, 1, 0, 0]])
    pred = artist_emb[[3, 4]] @ artist_emb.T  # the query artist stays in the gallery
    ttmrpp = T.ttmrpp_artist_retrieval(MODEL, items, audio_embeddings=emb, olga=OLGA,
                                       convention="ttmr-pp")  # fmt: skip
    assert ttmrpp.metrics["audio_nDCG@200"] == pytest.approx(sklearn_ndcg_rows(gt_audio, pred, 200))
    # text queries: every test artist, F included (connected only to E, which is in the gallery)
    texts = [
        "similar with artist Artist D",
        "similar with artist Artist E",
        "similar with artist Artist F",
    ]
    text_pred = np.stack([MODEL.encode_text(t) for t in texts]) @ artist_emb.T
    gt_text = np.array([[2, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 1]])
    assert ttmrpp.metrics["text_nDCG@200"] == pytest.approx(
        sklearn_ndcg_rows(gt_text, text_pred, 200)
    )
    assert ttmrpp.details["text_queries"][2] == "11111111-0000-4000-8000-000000000006"
    assert ttmrpp.metrics["n_text_queries"] == 3 and ttmrpp.metrics["n_audio_queries"] == 2


def test_ttmrpp_artist_unconnected_artists_score_zero_or_are_left_out():
    vec = {
        "TRAAAAA128F0000001": onehot("piano"),
        "TRAAAAA128F0000005": onehot("piano"),
        "TRAAAAA128F0000006": onehot("guitar"),
    }  # fmt: skip  (A, D, E; no B, C)
    items, emb = olga_items(vec)
    # E is connected to B and C only, both absent from the gallery: an empty query
    pp = T.ttmrpp_artist_retrieval(MODEL, items, audio_embeddings=emb, olga=OLGA, queries="audio",
                                   convention="ttmr-pp")  # fmt: skip
    d, e = pp.per_query["audio_nDCG@200"].tolist()
    assert e == 0.0 and pp.metrics["n_audio_queries"] == 2  # scored 0, averaged in
    # D (piano) ties A (piano, grade 2) and itself (grade 0): sklearn averages the tie's gains
    assert d == pytest.approx(
        sklearn_ndcg_rows(np.array([[2, 0, 0]]), np.array([[1, 1, 0.0]]), 200)
    )
    assert pp.metrics["audio_nDCG@200"] == pytest.approx(d / 2)
    mx = T.ttmrpp_artist_retrieval(MODEL, items, audio_embeddings=emb, olga=OLGA, queries="audio")
    d_mx, e_mx = mx.per_query["audio_nDCG@200"].tolist()
    assert np.isnan(e_mx) and mx.metrics["n_audio_queries"] == 1  # left out
    assert d_mx == pytest.approx(1 / np.log2(3))  # pessimistic: A after its tied non-relevant self
    with pytest.raises(T.TaskSkippedError, match="olga="):
        T.ttmrpp_artist_retrieval(MODEL, items, audio_embeddings=emb)


# ----------------------------------------------------------------------------- DIM-SIM


def dimsim_items() -> list[dict]:
    meta = json.loads((FIXTURES / "dimsim/dim-sim/track_meta.json").read_text())
    out = {}
    for key, info in meta.items():
        track, _pos, start = key.split("_")
        cid = f"dimsim:{track}@{float(start):g}"
        out[cid] = {**item(cid), "title": info["title"], "artist": info["artist_name"],
                    "album": info["release"]}  # fmt: skip
    out["dimsim:TRDIMAA128F0000006@10"] = item("dimsim:TRDIMAA128F0000006@10")
    return list(out.values())


def test_ttmrpp_track_text_anchor_and_votes():
    items = dimsim_items()
    vec = {it["id"]: onehot("violin") for it in items}  # every similarity 0: all ties
    emb = embedded(vec)
    triplets = FIXTURES / "dimsim" / "dim-sim"
    half = T.ttmrpp_track_similarity(MODEL, items, audio_embeddings=emb, triplets=triplets)
    assert half.metrics["accuracy"] == 0.5 and half.metrics["n_triplets"] == 4
    second = T.ttmrpp_track_similarity(MODEL, items, audio_embeddings=emb, triplets=triplets,
                                       convention="ttmr-pp")  # fmt: skip
    assert second.metrics["accuracy"] == 0.5  # ties predict song 2: right on votes 0 (2 of 4)
    assert second.per_query["correct"].tolist() == [0.0, 1.0, 0.0, 1.0]
    # the anchor text: "similar music track with {title} by {artist} from {album}"
    words = {"dimsim:TRDIMAA128F0000002@12.5": "piano", "dimsim:TRDIMAA128F0000003@60": "guitar"}
    model = KeywordModel()
    seen: list[str] = []
    encode = model.encode_text
    model.encode_text = lambda texts, **kw: seen.extend(texts) or encode(texts, **kw)  # type: ignore[method-assign]
    vec.update({k: onehot(w) for k, w in words.items()})
    items[0]["title"] = "Blue Song piano"  # anchor of triplet 1: closer to song 1 (piano)
    r = T.ttmrpp_track_similarity(model, items, audio_embeddings=embedded(vec), triplets=triplets,
                                  convention="ttmr-pp")  # fmt: skip
    assert (
        seen[0] == "similar music track with Blue Song piano by The Invented Band from First Album"
    )
    assert r.per_query["correct"][0] == 1.0  # voted song 1, predicted song 1


def test_ttmrpp_track_counts_what_it_leaves_out():
    items = [it for it in dimsim_items() if it["id"] != "dimsim:TRDIMAA128F0000004@0"]
    emb = embedded({it["id"]: onehot("piano") for it in items})
    r = T.ttmrpp_track_similarity(MODEL, items, audio_embeddings=emb,
                                  triplets=FIXTURES / "dimsim/dim-sim/clean-dim-sim.csv")  # fmt: skip
    assert r.metrics["n_triplets_without_audio"] == 2  # triplets 2 and 3 use clip 4
    assert r.metrics["n_triplets_without_anchor_text"] == 0
    assert r.metrics["n_triplets"] == 2


# ----------------------------------------------------------------------------- tags, zero-shot


def test_tag_task_with_an_explicit_list_and_precision_at_10():
    items = [item("t0", tags=["piano"]), item("t1", tags=["guitar", "piano"]),
             item("t2", tags=["guitar"]), item("t3", tags=["rock"])]  # fmt: skip
    emb = embedded({"t0": onehot("piano"), "t1": onehot("guitar", "piano"),
                    "t2": onehot("guitar"), "t3": onehot("drums")})  # fmt: skip
    r = T.tag_retrieval(MODEL, items, audio_embeddings=emb, tags=["Piano", "guitar", "violin"])
    assert r.details["queries"] == ["piano", "guitar"]  # list order, no frequency choice
    assert r.details["skipped_tags"] == ["violin"] and r.metrics["n_tags_skipped"] == 1
    assert r.per_query["P@10"].tolist() == [0.2, 0.2]  # 2 relevant of 10 slots
    assert r.metrics["mAP"] == 1.0
    spec = T.parse_task("tag-ttmr-50")
    assert spec.options == {"tags": "ttmr-50"} and spec.convention == "ttmr"
    with pytest.raises(T.TaskSkippedError, match="no listed tag"):
        T.tag_retrieval(MODEL, items, audio_embeddings=emb, tags=["violin", "flute"])


def test_zeroshot_is_bare_labels_and_renamed_tasks_say_so():
    assert T.TASKS["zeroshot"].options == {"templates": ["{label}"]}
    assert T.TASKS["zeroshot-prompts"].options["templates"] == list(T.DEFAULT_TEMPLATES)
    with pytest.raises(MelodexError, match="renamed: use same-artist"):
        T.parse_task("artist")
    with pytest.raises(MelodexError, match="ttmrpp-track"):
        T.parse_task("triplets")


# ----------------------------------------------------------------------------- conventions


def test_run_tasks_records_conventions_and_the_report_states_them(tmp_path):
    from melodex.evaluate.report import build_results

    for name in ("piano", "guitar", "drums"):
        write_audio(tmp_path / f"{name}.wav", 0)
    manifest = [item(n, f"{n}.wav", captions=[n]) for n in ("piano", "guitar", "drums")]
    run = T.run_tasks({"kw": KeywordModel()}, manifest, "test", ["caption"], root=tmp_path)
    caption = run.models[0].results["caption"]
    assert caption.details["convention"]["name"] == "melodex"
    assert caption.metrics["median_rank"] == 1.0
    forced = T.run_tasks({"kw": KeywordModel()}, manifest, "test", ["caption"], root=tmp_path,
                         conventions="ttmr-pp")  # fmt: skip
    assert forced.models[0].results["caption"].metrics["median_rank"] == 0.0  # 0-based
    results = build_results(forced, command="test")
    assert results["conventions"]["name"] == "ttmr-pp"
    assert results["tasks"][0]["convention"] == "ttmr-pp"
    report = markdown_report(results)
    assert "Convention: ttmr-pp: rank_base=0, median=plain, recall=fraction" in report


# ----------------------------------------------------------------------------- CLI


def test_data_load_cli_report_and_allow_missing_audio(tmp_path):
    root = Path(shutil.copytree(FIXTURES / "song_describer", tmp_path / "sdd"))
    write_audio(root / "audio" / "audio" / "26" / "226.2min.mp3", 0)
    runner = CliRunner()
    out = tmp_path / "m.jsonl"
    res = runner.invoke(
        app, ["data", "load", "song-describer", str(root), "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert (report["items_written"], report["items_with_audio"], report["missing_audio"]) == (
        1,
        1,
        2,
    )
    assert report["texts"] == {"caption": 2} and report["splits"]["test"] == 1
    assert sorted(report["missing_audio_ids"]) == ["song-describer:3112", "song-describer:4880"]
    assert len(out.read_text().splitlines()) == 1
    res = runner.invoke(
        app, ["data", "load", "sdd", str(root), "--out", str(out), "--allow-missing-audio"]
    )
    assert res.exit_code == 0, res.output
    assert "3 item(s) written, 1 with audio, 2 missing audio" in res.stdout
    assert len(out.read_text().splitlines()) == 3
    res = runner.invoke(app, ["data", "load", "sdd", str(root), "--out", str(out),
                              "--option", "valid_subset_only=true", "--json"])  # fmt: skip
    assert json.loads(res.stdout)["texts"] == {"caption": 1}
    empty = Path(shutil.copytree(FIXTURES / "musiccaps", tmp_path / "mc"))
    res = runner.invoke(
        app, ["data", "load", "musiccaps", str(empty), "--out", str(tmp_path / "x.jsonl")]
    )
    assert res.exit_code == 1 and "--allow-missing-audio" in res.output
    res = runner.invoke(app, ["data", "load", "nope", str(root), "--out", str(out)])
    assert res.exit_code == 1 and "unknown dataset" in res.output
    res = runner.invoke(
        app, ["data", "load", "sdd", str(root), "--out", str(out), "--option", "colour=red"]
    )
    assert res.exit_code == 1 and "no option(s) ['colour']" in res.output


def test_evaluate_rejects_a_bad_convention_before_loading_models(tmp_path):
    (tmp_path / "m.jsonl").write_text("")
    res = CliRunner().invoke(app, ["evaluate", "--manifest", str(tmp_path / "m.jsonl"),
                                   "--conventions", "melodex:ties=random"])  # fmt: skip
    assert res.exit_code == 1 and "ties must be" in res.output
