"""Tempo/key descriptors stored at index time and used as search filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from melodex.data.demo import build_demo
from melodex.errors import MelodexError
from melodex.library.library import Library


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    build_demo(root, n_tracks=8, seconds=10)
    return root / "audio"


def test_filters_need_descriptors_then_respect_them(
    music: Path, tmp_path: Path, base_model
) -> None:
    lib = Library(tmp_path / "db", model=base_model)
    lib.index(music)
    with pytest.raises(MelodexError, match="--descriptors"):
        lib.search("folk tune", bpm="60-200")

    report = lib.index(music, descriptors=True)  # fills rows indexed without them
    assert len(report.updated) == 8 and report.skipped == 0
    rows = lib.store.rows(columns=["id", "bpm", "key", "mode", "loudness_lufs"])
    assert all(r["bpm"] and r["key"] and r["mode"] in ("major", "minor") for r in rows)
    assert all(-60 < r["loudness_lufs"] < 0 for r in rows)

    minor = {r["id"] for r in rows if r["mode"] == "minor"}
    hits = lib.search("folk tune", k=8, key="minor")
    assert {h.id for h in hits} == minor
    assert all(h.mode == "minor" for h in hits)

    target = rows[0]["bpm"]
    lo, hi = target - 1, target + 1
    in_range = {r["id"] for r in rows if any(lo <= r["bpm"] * f <= hi for f in (1, 2, 0.5))}
    hits = lib.search("folk tune", k=8, bpm=f"{lo}-{hi}")
    assert {h.id for h in hits} == in_range and rows[0]["id"] in in_range
    with pytest.raises(MelodexError, match="bad bpm range"):
        lib.search("folk tune", bpm="fast")
    assert lib.index(music, descriptors=True).skipped == 8  # now nothing left to do

    # the HTTP API (and the page, which sends these) answers the same filters
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    app = create_app(ServeConfig(db=lib.path, model=lib.model))
    client = TestClient(app, base_url="http://localhost")
    params = {"q": "folk tune", "k": 8, "bpm": f"{lo}-{hi}"}
    found = client.get("/api/search", params=params).json()
    assert {h["id"] for h in found} == in_range and all(h["bpm"] for h in found)
    found = client.get("/api/search", params={"q": "folk tune", "k": 8, "key": "minor"}).json()
    assert {h["id"] for h in found} == minor and {h["mode"] for h in found} <= {"minor"}
    bad = client.get("/api/search", params={"q": "folk tune", "bpm": "90-60"})
    assert bad.status_code == 422 and "bpm" in bad.json()["error"]["message"]
