"""Playlists (text or seeds, a length, M3U/XSPF files) and paths between two tracks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from melodex.errors import MelodexError, ParameterError
from melodex.library.playlists import make_path, make_playlist, write_m3u, write_xspf
from tests.library_fixtures import TRACKS

LENGTH = {stem: seconds for _, stem, *_, seconds, _ in TRACKS}


def test_a_text_playlist_fills_the_length_best_first(tagged) -> None:
    lib, _ = tagged
    entries = make_playlist(lib, text="Palestrina", length=12)
    stems = [Path(e.path).stem for e in entries]
    assert set(stems) == {"kyrie", "gloria_pal", "sicut_cervus"}  # 15 s, the first to pass 12 s
    assert sum(e.duration for e in entries) >= 12
    assert sum(e.duration for e in entries[:-1]) < 12
    longer = make_playlist(lib, text="Palestrina", length=1000)
    assert len(longer) == 8 and len({e.id for e in longer}) == 8  # every track, once


def test_a_seed_playlist_starts_with_its_seeds_and_keeps_artists_apart(tagged) -> None:
    lib, paths = tagged
    seeds = [str(paths["emperor"]), str(paths["kyrie"])]
    entries = make_playlist(lib, seeds=seeds, length=1000, spacing=1)
    assert [e.path for e in entries[:2]] == seeds
    assert len({e.id for e in entries}) == len(entries) == 8
    clashes = sum(
        a.artist == b.artist or a.album == b.album
        for a, b in zip(entries, entries[1:], strict=False)
    )
    # 3 Palestrina + 2 Haydn + 2 Anonymous among 8: spacing holds while other tracks remain
    assert clashes <= 2
    plain = make_playlist(lib, seeds=seeds, length=1000)
    assert sum(a.artist == b.artist for a, b in zip(plain, plain[1:], strict=False)) >= clashes
    with pytest.raises(ParameterError, match="not both"):
        make_playlist(lib, text="x", seeds=seeds, length=10)
    with pytest.raises(ParameterError, match="positive"):
        make_playlist(lib, text="x", length=0)


def test_path_runs_from_a_to_b_without_repeats(tagged, toy_model) -> None:
    lib, paths = tagged
    entries = make_path(lib, str(paths["kyrie"]), str(paths["reel"]), steps=4)
    assert Path(entries[0].path).stem == "kyrie" and Path(entries[-1].path).stem == "reel"
    assert len(entries) == 6 and len({e.id for e in entries}) == 6
    # smooth: each step is nearer to the next track than the ends are to each other
    vec = {r["id"]: r["vector"] for r in lib.store.rows(columns=["id", "vector"])}
    import numpy as np

    ends = float(np.dot(vec[entries[0].id], vec[entries[-1].id]))
    steps = [
        float(np.dot(vec[a.id], vec[b.id])) for a, b in zip(entries, entries[1:], strict=False)
    ]
    assert np.mean(steps) > ends
    all_of_them = make_path(lib, str(paths["kyrie"]), str(paths["reel"]), steps=20)
    assert len(all_of_them) == 8  # the library runs out: no repeats
    with pytest.raises(MelodexError, match="two different"):
        make_path(lib, str(paths["kyrie"]), str(paths["kyrie"]), steps=2)


def test_m3u_and_xspf(tagged, tmp_path: Path) -> None:
    lib, _ = tagged
    entries = make_playlist(lib, text="Haydn", length=5)
    text = write_m3u(entries, tmp_path / "p.m3u").read_text("utf-8").splitlines()
    assert text[0] == "#EXTM3U"
    assert text[1] == f"#EXTINF:{round(entries[0].duration)},Joseph Haydn - {entries[0].title}"
    assert text[2] == entries[0].path
    root = ET.parse(write_xspf(entries, tmp_path / "p.xspf")).getroot()
    ns = {"x": "http://xspf.org/ns/0/"}
    tracks = root.findall("x:trackList/x:track", ns)
    assert len(tracks) == len(entries)
    assert tracks[0].find("x:location", ns).text == Path(entries[0].path).as_uri()
    assert tracks[0].find("x:duration", ns).text == str(round(entries[0].duration * 1000))


def test_cli_playlist_and_path(tagged, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, paths = tagged
    common = ["--db", str(lib.path), "--model", lib.model.source]
    runner = CliRunner()
    m3u = tmp_path / "out.m3u"
    res = runner.invoke(app, ["playlist", "songs", "by", "Haydn", "--length", "10s",
                              "--m3u", str(m3u), "--json", *common])  # fmt: skip
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert {Path(e["path"]).stem for e in listed} == {"emperor", "sunrise"}
    assert m3u.read_text("utf-8").count("#EXTINF:") == 2
    res = runner.invoke(app, ["playlist", str(paths["reel"]), "--length", "1m", "--json", *common])
    assert json.loads(res.stdout)[0]["path"] == str(paths["reel"])
    res = runner.invoke(
        app,
        ["path", str(paths["gloria"]), str(paths["emperor"]), "--steps", "2", "--json", *common],
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 4
    bad = runner.invoke(app, ["playlist", "x", "--length", "soon", *common])
    assert bad.exit_code == 1 and "soon" in bad.output


def test_http_playlist_path_duplicates(tagged) -> None:
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    lib, paths = tagged
    client = TestClient(
        create_app(ServeConfig(db=lib.path, model=lib.model)), base_url="http://localhost"
    )
    listed = client.get("/api/playlist", params={"q": "Palestrina", "length": "12s"}).json()
    assert {e["path"] for e in listed} == {"kyrie.flac", "gloria_pal.flac", "sicut_cervus.flac"}
    assert all("/" not in e["path"] for e in listed)
    filtered = client.get("/api/playlist", params={"q": "x", "length": "1h", "genre": "folk"})
    assert [e["path"] for e in filtered.json()] == ["reel.flac"]
    m3u = client.get("/api/playlist.m3u", params={"q": "Haydn", "length": "1m"})
    assert m3u.status_code == 200 and "attachment" in m3u.headers["content-disposition"]
    lines = m3u.text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[1].startswith("#EXTINF:")
    assert lines[2].startswith("http://localhost/api/tracks/") and lines[2].endswith("/audio")
    ids = {Path(r["path"]).stem: r["id"] for r in lib.store.rows(columns=["id", "path"])}
    walk = client.get(
        "/api/path", params={"from": ids["kyrie"], "to": ids["reel"], "steps": 2}
    ).json()
    assert [e["path"] for e in (walk[0], walk[-1])] == ["kyrie.flac", "reel.flac"]
    assert len(walk) == 4
    walk_m3u = client.get(
        "/api/path.m3u", params={"from": ids["kyrie"], "to": ids["reel"], "steps": 2}
    )
    assert (
        walk_m3u.status_code == 200
        and "melodex-path.m3u" in walk_m3u.headers["content-disposition"]
    )
    urls = [x for x in walk_m3u.text.splitlines() if not x.startswith("#")]
    assert urls == [f"http://localhost/api/tracks/{e['id']}/audio" for e in walk]  # in order
    assert walk_m3u.text.count("#EXTINF:") == 4 and "Drowsy Maggie" in walk_m3u.text
    assert client.get("/api/path", params={"from": 1, "to": ids["reel"]}).status_code == 404
    assert client.get("/api/path.m3u", params={"from": 1, "to": ids["reel"]}).status_code == 404
    same = client.get("/api/path", params={"from": ids["reel"], "to": ids["reel"]})
    assert same.status_code == 422
    assert client.get("/api/duplicates").json() == []
    bad = client.get("/api/playlist", params={"q": "x", "length": "long"})
    assert bad.status_code == 422 and "long" in bad.json()["error"]["message"]


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory, toy_model):
    """The tagged tracks indexed with descriptors (tempo, key): (library, stem -> path, rows)."""
    from melodex.library.library import Library
    from tests.library_fixtures import make_tagged_music

    root = tmp_path_factory.mktemp("described")
    paths = make_tagged_music(root / "music")
    lib = Library(root / "db", model=toy_model)
    lib.index(root / "music", descriptors=True)
    rows = lib.store.rows(columns=["id", "path", "bpm", "key", "mode", "vector"])
    assert all(r["bpm"] and r["mode"] for r in rows)
    return lib, paths, rows


def _tempo_range(rows: list) -> tuple[str, set[int]]:
    """A narrow tempo range around the first track's and the ids inside it (octaves allowed)."""
    lo, hi = rows[0]["bpm"] - 1, rows[0]["bpm"] + 1
    inside = {r["id"] for r in rows if any(lo <= r["bpm"] * f <= hi for f in (1, 2, 0.5))}
    assert rows[0]["id"] in inside and len(inside) < len(rows)
    return f"{lo}-{hi}", inside


def test_playlists_take_tempo_key_and_exclusion(described, toy_model) -> None:
    import numpy as np

    lib, paths, rows = described
    mode = rows[0]["mode"]
    same_mode = {r["id"] for r in rows if r["mode"] == mode}
    assert 0 < len(same_mode) < len(rows)  # the filter has something to leave out
    assert {e.id for e in make_playlist(lib, text="quartet", length=1000, key=mode)} == same_mode
    bpm, inside = _tempo_range(rows)
    assert {e.id for e in make_playlist(lib, text="quartet", length=1000, bpm=bpm)} == inside
    # a seed playlist: the seed first, then only tracks passing the filter
    seed = next(r for r in rows if r["mode"] != mode)
    entries = make_playlist(lib, seeds=[seed["id"]], length=1000, key=mode)
    assert entries[0].id == seed["id"] and {e.id for e in entries[1:]} == same_mode
    entries = make_playlist(lib, seeds=[seed["id"]], length=1000, bpm=bpm)
    assert {e.id for e in entries[1:]} == inside - {seed["id"]}
    # exclusion: the order of search with the same exclusion, not the plain one
    plain = [h.id for h in lib.search("bright organ", k=8, mode="vector")]
    pushed = [h.id for h in lib.search("bright organ", k=8, mode="vector", exclude="clicks")]
    assert plain != pushed
    got = make_playlist(lib, text="bright organ", length=1000, mode="vector", exclude="clicks")
    assert [e.id for e in got] == pushed
    negated = make_playlist(lib, text="bright organ no clicks", length=1000, mode="vector")
    assert [e.id for e in negated] == pushed
    # seeds with an exclusion: similarity to the seed minus half that to the excluded text
    vec = {r["id"]: np.asarray(r["vector"]) for r in rows}
    avoid = toy_model.encode_text("clicks")
    score = {i: float(v @ vec[seed["id"]] - 0.5 * (v @ avoid)) for i, v in vec.items()}
    expected = sorted((i for i in vec if i != seed["id"]), key=lambda i: -score[i])
    entries = make_playlist(lib, seeds=[seed["id"]], length=1000, exclude=["clicks"])
    assert [e.id for e in entries[1:]] == expected
    with pytest.raises(MelodexError, match="bpm"):
        make_playlist(lib, text="quartet", length=100, bpm="fast")


def test_cli_and_http_playlists_take_tempo_key_and_exclusion(described) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, paths, rows = described
    mode = rows[0]["mode"]
    same_mode = {r["id"] for r in rows if r["mode"] == mode}
    bpm, inside = _tempo_range(rows)
    common = ["--db", str(lib.path), "--model", lib.model.source, "--length", "1h", "--json"]
    runner = CliRunner()
    res = runner.invoke(app, ["playlist", "quartet", "--key", mode, *common])
    assert res.exit_code == 0, res.output
    assert {e["id"] for e in json.loads(res.stdout)} == same_mode
    res = runner.invoke(app, ["playlist", str(paths["reel"]), "--bpm", bpm, *common])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert listed[0]["path"] == str(paths["reel"])
    assert {e["id"] for e in listed[1:]} == inside - {listed[0]["id"]}
    pushed = [h.id for h in lib.search("bright organ", k=8, mode="vector", exclude="clicks")]
    res = runner.invoke(app, ["playlist", "bright organ", "--mode", "vector",
                              "--exclude", "clicks", *common])  # fmt: skip
    assert [e["id"] for e in json.loads(res.stdout)] == pushed
    bad = runner.invoke(app, ["playlist", "quartet", "--bpm", "fast", *common])
    assert bad.exit_code == 1 and "fast" in bad.output

    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    client = TestClient(
        create_app(ServeConfig(db=lib.path, model=lib.model)), base_url="http://localhost"
    )
    q = {"q": "quartet", "length": "1h"}
    got = client.get("/api/playlist", params={**q, "key": mode}).json()
    assert {e["id"] for e in got} == same_mode
    got = client.get("/api/playlist", params={**q, "bpm": bpm}).json()
    assert {e["id"] for e in got} == inside
    params = {"q": "bright organ", "length": "1h", "mode": "vector", "exclude": ["clicks"]}
    assert [e["id"] for e in client.get("/api/playlist", params=params).json()] == pushed
    m3u = client.get("/api/playlist.m3u", params={**q, "key": mode})
    assert m3u.text.count("#EXTINF:") == len(same_mode)
    bad = client.get("/api/playlist", params={**q, "bpm": "fast"})
    assert bad.status_code == 422 and "fast" in bad.json()["error"]["message"]


def test_http_playlist_tempo_without_descriptors_is_a_clear_422(tagged) -> None:
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    lib, _ = tagged
    client = TestClient(
        create_app(ServeConfig(db=lib.path, model=lib.model)), base_url="http://localhost"
    )
    res = client.get("/api/playlist", params={"q": "quartet", "bpm": "60-90"})
    assert res.status_code == 422 and res.json()["error"]["code"] == "no_descriptors"
    assert "--descriptors" in res.json()["error"]["message"]
