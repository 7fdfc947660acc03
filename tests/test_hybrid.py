"""Hybrid search (full text fused with vectors), metadata filters and negation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import MelodexError, ParameterError
from melodex.library.filters import (
    make_filter,
    parse_duration,
    parse_duration_range,
    parse_year_range,
    split_negations,
)
from melodex.library.hybrid import rrf
from melodex.library.library import Library
from tests.library_fixtures import make_tagged_music


def _stems(hits) -> list[str]:
    return [Path(h.path).stem for h in hits]


def test_a_name_finds_its_tracks_first(tagged) -> None:
    lib, _ = tagged
    hits = lib.search("Palestrina", k=8)
    assert set(_stems(hits)[:3]) == {"kyrie", "gloria_pal", "sicut_cervus"}
    assert all(h.text_score is not None for h in hits[:3])
    assert all(h.text_score is None for h in hits[3:])
    text_only = lib.search("Palestrina", k=8, mode="text")
    assert set(_stems(text_only)) == {"kyrie", "gloria_pal", "sicut_cervus"}
    # words found in most tracks ("by") or in none ("songs") do not rank
    assert set(_stems(lib.search("songs by Haydn", k=8))[:2]) == {"emperor", "sunrise"}
    # the album and the folder are searched too; diacritics are folded
    assert set(_stems(lib.search("Marcelli", k=2))) == {"kyrie", "gloria_pal"}
    assert _stems(lib.search("Pälestrina motets", k=1)) == ["sicut_cervus"]


def test_without_text_matches_the_vector_order_is_kept(tagged, toy_model) -> None:
    lib, _ = tagged
    ids, vectors = lib.store.vectors()
    query = toy_model.encode_text("bright organ")
    brute = ids[np.argsort(-(vectors @ query), kind="stable")][:5]
    for mode in ("hybrid", "vector"):
        hits = lib.search("bright organ", k=5, mode=mode)
        assert [h.id for h in hits] == list(brute)
        np.testing.assert_allclose(
            [h.score for h in hits], np.sort(vectors @ query)[::-1][:5], atol=1e-5
        )


def test_rrf_is_the_sum_of_reciprocal_ranks() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], rrf_k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"artist": "haydn"}, {"emperor", "sunrise"}),
        ({"album": "op. 76"}, {"emperor", "sunrise"}),
        ({"genre": "chant"}, {"gloria", "alleluia"}),
        ({"year": "1500-1599"}, {"kyrie", "gloria_pal", "sicut_cervus"}),
        ({"year": "1797"}, {"emperor", "sunrise"}),
        ({"year": "-1300"}, {"gloria", "alleluia"}),
        ({"duration": "6s-7s"}, {"kyrie", "alleluia", "reel"}),
        ({"duration": "0:07"}, {"alleluia", "emperor"}),
        ({"folder": "misc"}, {"gloria", "alleluia", "reel"}),
        ({"artist": "palestrina", "duration": "-5s"}, {"gloria_pal", "sicut_cervus"}),
    ],
)
def test_filters(tagged, options: dict, expected: set) -> None:
    lib, _ = tagged
    for mode in ("hybrid", "vector"):
        assert set(_stems(lib.search("music", k=8, mode=mode, **options))) == expected


def test_folder_filter_takes_an_absolute_folder(tagged) -> None:
    lib, paths = tagged
    folder = paths["emperor"].parent
    assert set(_stems(lib.search("quartet", k=8, folder=str(folder)))) == {"emperor", "sunrise"}
    assert lib.search("quartet", k=8, folder=str(folder) + "_not") == []


def test_filter_spellings_and_errors() -> None:
    assert parse_year_range("1990-1999") == (1990, 1999)
    assert parse_year_range("1990-") == (1990, None)
    assert parse_year_range(" -1999") == (None, 1999)
    assert parse_duration("2m30s") == 150 and parse_duration("3:30") == 210
    assert parse_duration("1h") == 3600 and parse_duration("90") == 90
    assert parse_duration_range("2m-5m") == (120, 300)
    assert parse_duration_range("2m") == (120, None)
    with pytest.raises(ParameterError, match="1999-1990"):
        parse_year_range("1999-1990")
    with pytest.raises(ParameterError, match="'soon'"):
        parse_duration_range("soon")
    with pytest.raises(ParameterError, match="--artist"):
        make_filter(artist=" ")
    assert not make_filter() and make_filter(genre="x")


def test_negations_are_split_out_of_a_query() -> None:
    assert split_negations("calm piano no vocals") == ("calm piano", ["vocals"])
    assert split_negations('jazz, not "heavy metal" without drums') == (
        "jazz,",
        ["heavy metal", "drums"],
    )
    assert split_negations("notes of a nocturne") == ("notes of a nocturne", [])


def test_exclusion_subtracts_the_similarity_to_the_excluded_text(tagged, toy_model) -> None:
    lib, _ = tagged
    ids, vectors = lib.store.vectors()
    query, avoid = toy_model.encode_text(["bright organ", "clicks"])
    expected = vectors @ query - 0.5 * (vectors @ avoid)
    order = np.argsort(-expected, kind="stable")
    for hits in (
        lib.search("bright organ", k=8, exclude="clicks", mode="vector"),
        lib.search("bright organ no clicks", k=8, mode="vector"),
    ):
        assert [h.id for h in hits] == list(ids[order])
        np.testing.assert_allclose([h.score for h in hits], expected[order], atol=1e-5)
    kept = lib.search("bright organ no clicks", k=8, mode="vector", negation=False)
    assert all(h.vector_score == h.score for h in kept)  # no penalty: the words stay in the query
    # a track whose metadata name the excluded text leaves the text ranking
    assert "sunrise" not in _stems(lib.search("Haydn", k=8, exclude="sunrise", mode="text"))
    with pytest.raises(MelodexError, match="empty"):
        lib.search("no vocals")


def test_a_common_word_counts_against_the_current_number_of_tracks(tmp_path: Path) -> None:
    """A word in more than MAX_DOC_SHARE of the tracks is left out of the text ranking; the
    track count behind that share is cached per store version, so new tracks move it."""
    from melodex.library.store import Store
    from melodex.library.text_index import TextIndex
    from tests.test_store_scale import make_rows

    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", 8)
    rows = make_rows(range(4), 0)
    for r in rows[:3]:
        r.genre = "Rock"
    store.upsert(rows)
    index = TextIndex(tmp_path / "db")
    index.sync(store)
    assert index.match("rock", limit=10) == []  # 3 of 4 tracks: not selective
    store.upsert(make_rows(range(4, 10), 1))
    index.sync(store)
    first = index.match("rock", limit=10)
    assert sorted(i for i, _ in first) == [0, 1, 2]  # 3 of 10
    assert index.match("rock", limit=10) == first  # from the cache: the same answer
    assert [i for i, _ in index.match("rock", limit=10, allowed=np.array([2, 0]))] == [
        i for i, _ in first if i in (0, 2)
    ]
    store.delete([1])  # a new store version: nothing cached survives it
    index.sync(store)
    assert sorted(i for i, _ in index.match("rock", limit=10)) == [0, 2]


def test_summed_piece_scores_equal_sqlite_bm25_of_the_or_query(tmp_path: Path) -> None:
    """match() adds each piece's cached bm25 instead of asking SQLite for the OR query: the
    same scores bit for bit, and the same order (score, then id)."""
    import sqlite3

    from melodex.library.store import Store
    from melodex.library.text_index import FIELD_WEIGHTS, TextIndex
    from tests.test_store_scale import make_rows

    store = Store(tmp_path / "db", create=True)
    store.bind_model("m@1", "m", 8)
    rows = make_rows(range(60), 0)
    words = ["rock", "lonely", "slow", "blue", "night"]
    rng = np.random.default_rng(0)
    for r in rows:
        r.title = " ".join(rng.choice(words, size=rng.integers(1, 4)))
        r.genre = str(rng.choice(["Rock", "Jazz", "Folk"]))
        r.artist = str(rng.choice(["Slow Night", "Blue Rock Band", "Ann"]))
    store.upsert(rows)
    index = TextIndex(tmp_path / "db")
    index.sync(store)
    sql_db = sqlite3.connect(tmp_path / "db" / "text-index.sqlite")
    weights = ", ".join(str(w) for w in FIELD_WEIGHTS)
    most = 0
    for text in ("lonely rock", "Jazz night lonely", "Folk Jazz Ann", "Ann lonely Folk"):
        pieces = index._selective_pieces(text)
        assert pieces, text
        want = sql_db.execute(
            f"SELECT rowid, -bm25(fts, {weights}) AS s FROM fts WHERE fts MATCH ? "
            "ORDER BY s DESC, rowid LIMIT 25",
            (" OR ".join(pieces),),
        ).fetchall()
        assert index.match(text, limit=25) == [(int(i), float(s)) for i, s in want], text
        most = max(most, len(pieces))
    assert most >= 3  # several pieces summed, not only single-phrase queries


def test_text_index_follows_the_store(tmp_path: Path, toy_model) -> None:
    paths = make_tagged_music(tmp_path / "music")
    lib = Library(tmp_path / "db", model=toy_model)
    lib.index(tmp_path / "music")
    assert len(lib.search("Haydn", k=8, mode="text")) == 2
    paths["sunrise"].unlink()
    lib.index(tmp_path / "music")
    assert _stems(lib.search("Haydn", k=8, mode="text")) == ["emperor"]
    # a new process (a new Library) reads the index file and finds it current
    again = Library(tmp_path / "db", model=toy_model)
    assert _stems(again.search("Haydn", k=8, mode="text")) == ["emperor"]
    assert (tmp_path / "db" / "text-index.sqlite").is_file()


def test_cli_filters_and_exclusion(tagged) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, _ = tagged
    model = lib.model.source
    base = ["search", "quartet", "--db", str(lib.path), "--model", model, "--json", "-k", "8"]
    runner = CliRunner()
    res = runner.invoke(app, [*base, "--artist", "haydn", "--duration", "-5s"])
    assert res.exit_code == 0, res.output
    assert [Path(h["path"]).stem for h in json.loads(res.stdout)] == ["sunrise"]
    res = runner.invoke(app, [*base, "--year", "1990-1999", "--folder", "misc", "--mode", "text"])
    assert res.exit_code == 0 and json.loads(res.stdout) == []  # "quartet" names none there
    res = runner.invoke(app, [*base, "--genre", "folk", "--exclude", "clicks", "--mode", "vector"])
    assert [Path(h["path"]).stem for h in json.loads(res.stdout)] == ["reel"]
    bad = runner.invoke(app, [*base, "--year", "late"])
    assert bad.exit_code == 1 and "--year 'late'" in bad.output


def test_http_filters_and_exclusion(tagged) -> None:
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    lib, _ = tagged
    client = TestClient(
        create_app(ServeConfig(db=lib.path, model=lib.model)), base_url="http://localhost"
    )
    found = client.get("/api/search", params={"q": "Palestrina", "k": 3}).json()
    assert {h["path"] for h in found} == {"kyrie.flac", "gloria_pal.flac", "sicut_cervus.flac"}
    assert all(h["text_score"] > 0 for h in found)
    params = {"q": "music", "k": 8, "year": "1500-1580", "genre": "renaissance"}
    assert {h["path"] for h in client.get("/api/search", params=params).json()} == {
        "kyrie.flac",
        "gloria_pal.flac",
    }
    params = {"q": "quartet", "k": 8, "folder": "haydn_q"}
    assert {h["path"] for h in client.get("/api/search", params=params).json()} == {
        "emperor.flac",
        "sunrise.flac",
    }
    params = {"q": "organ", "k": 8, "mode": "vector", "exclude": ["clicks", "band"]}
    hits = client.get("/api/search", params=params).json()
    assert len(hits) == 8 and all(abs(h["score"] - h["vector_score"]) > 1e-6 for h in hits)
    bad = client.get("/api/search", params={"q": "x", "duration": "long"})
    assert bad.status_code == 422 and "duration" in bad.json()["error"]["message"]
    assert client.get("/api/search", params={"q": "x", "mode": "fuzzy"}).status_code == 422
