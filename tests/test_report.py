"""results.json, the Markdown report, compare, and `melodex evaluate` end to end on real audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from melodex.errors import MelodexError
from melodex.evaluate import report as R
from melodex.evaluate.tasks import run_tasks
from tests.test_tasks import KeywordModel, item, write_wav

pytestmark = pytest.mark.heavy  # end-to-end evaluations with real models


@pytest.fixture()
def keyword_run(tmp_path):
    for name in ("piano", "guitar", "drums"):
        write_wav(tmp_path / f"{name}.wav", 0.5)
    manifest = [
        item("a", "piano.wav", captions=["solo piano"], tags=["piano"], artist="P"),
        item("b", "guitar.wav", captions=["guitar"], tags=["guitar"], artist="P"),
        item("c", "drums.wav", captions=["drums, loud"], tags=["drums"], artist="Q"),
    ]
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in manifest))
    return run_tasks({"kw": KeywordModel()}, path, "test", ["caption", "tag", "zeroshot"], seed=1)


def test_results_json_round_trip_and_provenance(keyword_run, tmp_path):
    res = R.build_results(keyword_run, command="melodex evaluate --model kw")
    path = R.write_results(res, tmp_path / "out" / "results.json")
    back = R.load_results(path)
    assert back["command"] == "melodex evaluate --model kw"
    assert back["split"] == "test" and back["seed"] == 1 and back["format"] == 1
    assert len(back["manifest"]["sha256"]) == 64 and back["melodex_version"]
    entry = back["models"]["kw"]
    assert entry["identity"] == "keywords@0" and entry["n_embedded"] == 3
    assert set(entry["tasks"]) == {"caption", "tag"} and "zeroshot" in entry["skipped"]
    caption = entry["tasks"]["caption"]
    assert caption["metrics"]["R@1"] == 1.0 and caption["per_query"]["rank"] == [1, 1, 1]
    assert entry["tasks"]["tag"]["details"]["queries"] == ["drums", "guitar", "piano"]


def test_format_metric():
    m = {"R@1": 0.41234, "R@1_ci_low": 0.381, "R@1_ci_high": 0.4449, "median_rank": 3.0,
         "median_rank_ci_low": 2.0, "median_rank_ci_high": 5.0, "n_queries": 12}  # fmt: skip
    assert R.format_metric(m, "R@1") == "0.412 [0.38, 0.44]"
    assert R.format_metric(m, "median_rank") == "3.0 [2.0, 5.0]"
    assert R.format_metric(m, "n_queries") == "12"
    assert R.format_metric(m, "MRR") == "-"


def test_markdown_report_has_one_table_per_task_and_the_skips(keyword_run):
    res = R.build_results(keyword_run, command="melodex evaluate --model kw")
    md = R.markdown_report(res, figures=["out/tag_ap_tag.png"])
    assert "## caption" in md and "## tag" in md and "## zeroshot" in md
    assert "| model | R@1 | R@5 | R@10 | median_rank |" in md
    assert "| kw | 1.000 [1.00, 1.00] |" in md
    assert "| kw | skipped: zero-shot needs >= 2 classes" in md
    assert "![tag_ap_tag](tag_ap_tag.png)" in md


def test_compare_side_by_side_and_warns_on_different_setups(keyword_run, tmp_path):
    res = R.build_results(keyword_run, command="x")
    a = R.write_results(res, tmp_path / "a" / "results.json")
    b = R.write_results({**res, "seed": 7}, tmp_path / "b" / "results.json")
    md = R.compare([a, b])
    assert "| kw (1: a) | 1.000" in md and "| kw (2: b) | 1.000" in md
    assert "differ in manifest, split or seed" in md
    assert "Warning" not in R.compare([a, a])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(MelodexError, match="bad.json: not a melodex results.json"):
        R.compare([tmp_path / "bad.json"])


needs_render = pytest.mark.skipif(
    shutil.which("fluidsynth") is None
    or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file(),
    reason="needs Debian fluidsynth and fluid-soundfont-gm",
)


@needs_render
def test_melodex_evaluate_and_compare_end_to_end(tmp_path, capsys):
    pytest.importorskip("music21")
    pytest.importorskip("matplotlib")
    from melodex.cli import main
    from melodex.data.demo import build_demo

    manifest = build_demo(tmp_path / "demo", n_tracks=6, seconds=6)
    out = tmp_path / "eval"
    common = ["evaluate", "--manifest", str(manifest), "--split", "all", "--seed", "0"]
    common += ["--cache", str(tmp_path / "cache")]
    args = [*common, "--out", str(out)]
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "caption" in printed and "melodex-base" in printed

    res = json.loads((out / "results.json").read_text())
    assert res["command"].startswith("melodex evaluate --model melodex-base --manifest ")
    assert res["split"] == "all" and res["n_items"] == 6 and res["seed"] == 0
    entry = res["models"]["melodex-base"]
    assert entry["n_embedded"] == 6 and entry["failures"] == []
    ran = set(entry["tasks"]) | set(entry["skipped"])
    assert ran == {"caption", "track2text", "tag", "tag-all", "zeroshot", "tag-triplets",
                   "same-artist", "unseen"}  # fmt: skip
    assert {"caption", "tag", "zeroshot", "tag-triplets"} <= set(entry["tasks"])
    for task in entry["tasks"].values():
        m = task["metrics"]
        for key in [k for k in m if k + "_ci_low" in m]:
            assert m[key + "_ci_low"] <= m[key] + 1e-9 <= m[key + "_ci_high"] + 2e-9, key
    assert 0.0 <= entry["tasks"]["tag"]["metrics"]["ROC-AUC"] <= 1.0
    assert res["joint_space"]["projection"].startswith(("UMAP", "PCA"))

    md = (out / "report.md").read_text()
    assert "## caption" in md and "| model | R@1 |" in md and "| melodex-base | " in md
    assert "| model | mAP | ROC-AUC | PR-AUC | P@10 | n_tags |" in md
    assert "Convention: melodex: rank_base=1" in md
    for png in ("tag_ap_tag.png", "joint_space.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

    # the second run reads every track from the cache and gives the same numbers
    with pytest.raises(SystemExit):
        main([*common, "--out", str(tmp_path / "again"), "--no-plots"])
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["models"]["melodex-base"]["cache_hits"] == 6
    assert again["models"]["melodex-base"]["tasks"] == entry["tasks"]

    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["compare", str(out / "results.json"), str(tmp_path / "again" / "results.json")])
    assert done.value.code == 0
    assert "R@1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(
            [
                "compare",
                "--markdown",
                str(out / "results.json"),
                str(tmp_path / "again" / "results.json"),
            ]
        )
    side_by_side = capsys.readouterr().out
    assert "| melodex-base (1: eval) |" in side_by_side
    assert "| melodex-base (2: again) |" in side_by_side


def test_plots_from_results_and_projection_fallback(keyword_run, tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np

    from melodex.evaluate.plots import plot_tag_ap, project_2d

    res = R.build_results(keyword_run, command="x")
    res["models"]["kw2"] = res["models"]["kw"]
    (png,) = plot_tag_ap(res, tmp_path)
    assert png.name == "tag_ap_tag.png" and png.read_bytes()[:4] == b"\x89PNG"
    x = np.random.default_rng(0).normal(size=(3, 8))
    xy, how = project_2d(x, method="umap")  # too few points for UMAP
    assert xy.shape == (3, 2) and how.startswith("PCA")
