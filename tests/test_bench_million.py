"""bench/bench_million.py at a tiny size: every phase runs (HNSW forced by a low threshold)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from melodex.library import search_index
from melodex.library.store import Store, track_id
from tests.script_modules import load_script

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):  # noqa: ANN202 (a script module)
    return load_script(f"bench/{name}.py")


def test_bench_million_smoke_resumes_and_reports_every_figure(tmp_path: Path, base_model) -> None:
    bench = _load("bench_million")
    db = tmp_path / "lib"
    common = ["--db", str(db), "--n-clusters", "20", "--hnsw-threshold", "1000"]
    threshold = search_index.EXACT_MAX_ELEMENTS

    # a first, "interrupted" build of 1,500 tracks, then the full run continues from there
    first = bench.main(
        ["--tracks", "1500", *common, "--skip", "recall", "serve", "add"], model=base_model
    )
    assert first["tracks"] == 1500 and first["index_kind"] == "hnsw"
    out = tmp_path / "figures.json"
    figures = bench.main(
        ["--tracks", "3000", *common, "--add", "200", "--queries", "100"]
        + ["--text-queries", "10", "--ef", "64", "--json", str(out)],
        model=base_model,
    )
    assert threshold == search_index.EXACT_MAX_ELEMENTS  # the override does not leak

    store = Store(db)
    maker = sys.modules["million_data"].RowMaker
    paths = maker(dim=store.dim, n_tags=1, n_clusters=20).paths_and_meta(0, 3000)["path"]
    assert sorted(store.ids().tolist()) == sorted(track_id(p) for p in paths)
    assert not (tmp_path / "lib-add-copy").exists()  # the add phase worked on a copy

    assert figures == {**json.loads(out.read_text())}
    assert figures["tracks"] == 3000 and figures["index_kind"] == "hnsw"
    assert figures["index_disk_mb"] > 0
    assert figures[f"recall10_ef{search_index.EF_SEARCH}"]["all"] > 0.8
    assert figures["recall10_ef64"]["cluster"] > 0.5
    assert 0 < figures["text_query_p50_ms"] <= figures["text_query_p99_ms"]
    assert "short_results" not in figures
    assert figures["serve_peak_rss_mb"] > 0
    for key in ("add_upsert_commits_s", "add_upsert_one_batch_s", "add_sync_index_s"):
        assert np.isfinite(figures[key])
    assert set(figures["load_average"]) >= {"text_query_p50_ms", "add_sync_index_s"}
