"""Highlights: the best indexed window for a text or for the track itself, in hits and alone."""

from __future__ import annotations

import json

import numpy as np

from melodex.library.highlights import window_seconds


def test_highlight_scores_every_indexed_window(tagged, toy_model) -> None:
    lib, paths = tagged
    path = str(paths["emperor"])
    row = lib.store.find_path(path)
    windows = np.asarray(row["window_vectors"], np.float32)
    starts = np.asarray(row["window_starts"])
    text = toy_model.encode_text("band 2")
    found = lib.highlight(path, "band 2")
    assert found.start == starts[int(np.argmax(windows @ text))]
    assert [m.start for m in found.moments] == list(starts[np.argsort(-(windows @ text))])
    assert all(m.end - m.start == 1.0 for m in found.moments)  # the toy model's 1-s windows
    typical = lib.highlight(row["id"])
    assert typical.start == starts[int(np.argmax(windows @ np.asarray(row["vector"])))]
    # a search hit carries the same moment
    (hit,) = [h for h in lib.search("band 2", k=8, mode="vector") if h.path == path]
    assert hit.segment_start == found.start
    assert window_seconds(object(), np.array([0.0, 3.0, 9.0])) == 3.0


def test_cli_highlight(tagged) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, paths = tagged
    res = CliRunner().invoke(
        app,
        ["highlight", str(paths["reel"]), "calm", "--db", str(lib.path),
         "--model", lib.model.source, "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["query"] == "calm" and data["start"] == data["moments"][0]["start"]
    assert len(data["moments"]) == 6  # 6 s of audio, 1-s windows
