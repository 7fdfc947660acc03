"""A library indexed with ``--model clap-hf:FOLDER`` (a tiny random CLAP) answers search,
similar, describe and the page's API, and later opens without being told the model."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from melodex.library.library import Library  # noqa: E402
from melodex.library.store import track_id  # noqa: E402
from melodex.serve import ServeConfig, create_app  # noqa: E402
from tests.clap_fixtures import make_clap_folder  # noqa: E402
from tests.music_fixtures import tone_piece, write_audio  # noqa: E402


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], str]:
    root = tmp_path_factory.mktemp("clap-lib")
    spec = f"clap-hf:{make_clap_folder(root / 'tiny-clap')}"
    kinds = ("plucked", "organ", "clicks")
    music = [
        write_audio(root / "music" / f"t{i}.flac", tone_piece(i, 4.0, kind=kinds[i % 3]))
        for i in range(3)
    ]
    report = Library(root / "db", model=spec).index(root / "music")
    assert len(report.added) == 3 and not report.failed
    return root / "db", music, spec


def test_library_remembers_the_spec_and_licence(indexed) -> None:
    db, _, spec = indexed
    lib = Library(db)  # no model given: the recorded source loads it
    assert lib.model.source == spec
    assert lib.store.meta["model_source"] == spec
    assert lib.store.meta["licence"] == lib.model.licence
    assert lib.store.meta["model"] == lib.model.identity


def test_search_similar_describe(indexed) -> None:
    db, music, _ = indexed
    lib = Library(db)
    hits = lib.search("slow church organ", k=3)
    assert len(hits) == 3 and hits[0].score >= hits[-1].score
    similar = lib.similar(music[0], k=2)
    assert len(similar) == 2 and str(music[0].resolve()) not in {h.path for h in similar}
    described = lib.describe(music[1], k=4)
    assert len(described.texts) == 4 and described.tags == []
    assert len(described.similar) == 2


def test_page_api_searches_with_the_recorded_model(indexed) -> None:
    db, music, spec = indexed
    client = TestClient(
        create_app(ServeConfig(db=db)), raise_server_exceptions=False, base_url="http://localhost"
    )
    health = client.get("/api/health").json()
    assert health["tracks"] == 3 and health["model"]["name"].startswith("clap-hf:")
    r = client.get("/api/search", params={"q": "bright plucked strings", "k": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()) == 2
    own = track_id(str(music[2].resolve()))
    r = client.get(f"/api/similar/{own}", params={"k": 2})
    assert r.status_code == 200 and own not in {h["id"] for h in r.json()}
