"""The HTTP API over a real small library: real audio, the real default model, FastAPI's client."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from melodex.library.library import Library  # noqa: E402
from melodex.library.store import track_id  # noqa: E402
from melodex.serve import ServeConfig, create_app  # noqa: E402
from tests.music_fixtures import tone_piece, write_audio  # noqa: E402

#: The base URL of in-process clients: a loopback Host, which the server answers by default.
LOCAL = "http://localhost"

FORMATS = (".flac", ".mp3", ".ogg", ".wav")
CONTENT_TYPES = {
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
}
HIT_KEYS = {
    "rank",
    "score",
    "id",
    "path",
    "title",
    "artist",
    "album",
    "genre",
    "duration",
    "segment_start",
    "bpm",
    "key",
    "mode",
    "vector_score",
    "text_score",
}


def make_music(folder: Path, n: int, *, offset: int = 0) -> list[Path]:
    kinds = ("plucked", "organ", "clicks")
    paths = []
    for i in range(offset, offset + n):
        path = folder / f"track{i:02d}{FORMATS[i % len(FORMATS)]}"
        tags = {"title": f"Track {i}", "artist": f"Artist {i % 2}"}
        paths.append(write_audio(path, tone_piece(i, 6.0, kind=kinds[i % 3]), tags=tags))
    return paths


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, toy_model):
    """(library folder, music files, model): four 6-second tracks in four formats, indexed."""
    root = tmp_path_factory.mktemp("serve")
    music = make_music(root / "music", 4)
    db = root / "library"
    Library(db, model=toy_model).index(root / "music")
    return db, music, toy_model


@pytest.fixture(scope="session")
def client(served) -> TestClient:
    db, _, model = served
    return TestClient(
        create_app(ServeConfig(db=db, model=model)), raise_server_exceptions=False, base_url=LOCAL
    )


@pytest.fixture(scope="session")
def ids(served) -> dict[str, int]:
    """File name -> track id (ids are a hash of the absolute path)."""
    return {p.name: track_id(str(p.resolve())) for p in served[1]}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


# -------------------------------------------------------------------------- reading endpoints


def test_health_reports_tracks_model_and_index(client: TestClient, served) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["tracks"] == 4
    assert body["model"]["identity"] == served[2].identity
    assert body["model"]["name"] == served[2].config.name
    assert body["index"] == "exact"


def test_search_follows_the_json_contract_without_folders(client: TestClient, served) -> None:
    r = client.get("/api/search", params={"q": "slow organ", "k": 3})
    assert r.status_code == 200
    hits = r.json()
    assert len(hits) == 3
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert all(set(h) == HIT_KEYS | {"id_str"} for h in hits)
    assert all(h["id_str"] == str(h["id"]) for h in hits)
    assert all("/" not in h["path"] for h in hits)
    assert str(served[0].parent) not in r.text  # no folder of the server's disk leaks
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    # the same answer as the library itself
    lib_hits = Library(served[0], model=served[2]).search("slow organ", k=3)
    assert [h["id"] for h in hits] == [h.id for h in lib_hits]


@pytest.mark.parametrize(
    "params",
    [{"q": "   "}, {}, {"q": "piano", "k": 0}, {"q": "piano", "k": 101}, {"q": "a", "k": "x"}],
)
def test_search_rejects_bad_parameters(client: TestClient, params: dict) -> None:
    assert_error(client.get("/api/search", params=params), 422, "invalid_request")


def test_search_filters_say_what_is_missing(client: TestClient, served) -> None:
    # this library was indexed without --descriptors
    r = client.get("/api/search", params={"q": "organ", "bpm": "60-90"})
    assert_error(r, 422, "no_descriptors")
    assert "--descriptors" in r.text and str(served[0]) not in r.text
    assert_error(
        client.get("/api/search", params={"q": "organ", "key": "H major"}), 422, "invalid_filter"
    )


def test_similar_leaves_the_track_out(client: TestClient, ids: dict[str, int]) -> None:
    tid = ids["track00.flac"]
    hits = client.get(f"/api/similar/{tid}", params={"k": 2}).json()
    assert len(hits) == 2
    assert tid not in [h["id"] for h in hits]
    assert_error(client.get("/api/similar/12345"), 404, "not_found")


def test_track_details_are_path_free(client: TestClient, ids: dict[str, int], served) -> None:
    tid = ids["track01.mp3"]
    r = client.get(f"/api/tracks/{tid}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == tid and body["id_str"] == str(tid)
    assert body["filename"] == "track01.mp3" and body["format"] == "mp3"
    assert body["title"] == "Track 1" and body["artist"] == "Artist 1"
    assert body["duration"] == pytest.approx(6.0, abs=0.1)
    assert len(body["tags"]) == len(served[2].tag_names)
    scores = [t["score"] for t in body["tags"]]
    assert scores == sorted(scores, reverse=True)
    assert body["audio_url"] == f"/api/tracks/{tid}/audio"
    assert str(served[0].parent) not in r.text
    assert_error(client.get("/api/tracks/77"), 404, "not_found")


def test_map_places_every_track_and_is_cached(client: TestClient, ids: dict[str, int]) -> None:
    first = client.get("/api/map").json()
    assert {p["id"] for p in first["points"]} == set(ids.values())
    assert all(0.0 <= p["x"] <= 1.0 and 0.0 <= p["y"] <= 1.0 for p in first["points"])
    assert sum(first["explained_variance"]) <= 1.0 + 1e-6
    service = client.app.state.service
    cached = service._map
    assert client.get("/api/map").json() == first
    assert service._map is cached  # same store version: not recomputed


# -------------------------------------------------------------------------- audio and ranges


def test_audio_streams_whole_files_with_their_type(client: TestClient, ids, served) -> None:
    for path in served[1]:
        r = client.get(f"/api/tracks/{ids[path.name]}/audio")
        assert r.status_code == 200
        assert r.headers["content-type"] == CONTENT_TYPES[path.suffix]
        assert r.headers["accept-ranges"] == "bytes"
        assert r.content == path.read_bytes()


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=0-99", 0, 100), ("bytes=1000-1999", 1000, 2000), ("bytes=-100", -100, None)],
)
def test_audio_serves_byte_ranges(client, ids, served, header, start, stop) -> None:
    path = served[1][0]
    data = path.read_bytes()
    r = client.get(f"/api/tracks/{ids[path.name]}/audio", headers={"Range": header})
    assert r.status_code == 206
    want = data[start:stop]
    assert r.content == want
    first = start if start >= 0 else len(data) + start
    assert r.headers["content-range"] == f"bytes {first}-{first + len(want) - 1}/{len(data)}"
    assert r.headers["content-type"] == "audio/flac"


def test_audio_refuses_unsatisfiable_and_malformed_ranges(client, ids, served) -> None:
    path = served[1][0]
    size = path.stat().st_size
    url = f"/api/tracks/{ids[path.name]}/audio"
    r = client.get(url, headers={"Range": f"bytes={size}-"})
    assert_error(r, 416, "range_not_satisfiable")
    assert r.headers["content-range"] == f"bytes */{size}"
    assert_error(client.get(url, headers={"Range": "pages=1-2"}), 400)


@pytest.mark.parametrize(
    "url",
    [
        "/api/tracks/../../etc/passwd",
        "/api/tracks/..%2F..%2Fetc%2Fpasswd/audio",
        "/api/tracks/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio",
        "/api/tracks/%252e%252e%252fetc%252fpasswd/audio",
        "/api/tracks//etc/passwd/audio",
        "/api/tracks/%2Fetc%2Fpasswd/audio",
        "/api/tracks/1%00/audio",
        "/api/tracks/abc/audio",
        "/api/tracks/-1/audio",
        "/api/tracks/1.5/audio",
        "/api/tracks/" + "9" * 400 + "/audio",
        "/api/tracks/9223372036854775808/audio",
        "/api/similar/..%2F..%2Fetc%2Fpasswd",
        "/api/../etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_hostile_paths_never_reach_a_file(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code in (404, 422), (url, r.status_code)
    assert "root:" not in r.text
    assert_error(r, r.status_code)


def test_a_file_changed_or_replaced_since_indexing_is_not_served(tmp_path: Path, toy_model) -> None:
    music = make_music(tmp_path / "music", 2)
    db = tmp_path / "library"
    Library(db, model=toy_model).index(tmp_path / "music")
    client = TestClient(create_app(ServeConfig(db=db, model=toy_model)), base_url=LOCAL)
    points = client.get("/api/map").json()["points"]
    by_title = {p["title"]: p["id"] for p in points}
    music[0].unlink()
    music[0].symlink_to("/etc/passwd")  # swapped for a link to a file outside the library
    assert_error(client.get(f"/api/tracks/{by_title['Track 0']}/audio"), 404, "file_missing")
    music[1].unlink()
    assert_error(client.get(f"/api/tracks/{by_title['Track 1']}/audio"), 404, "file_missing")


# -------------------------------------------------------------------------- describe uploads


def test_describe_an_upload_without_touching_the_library(
    client: TestClient, served, ids, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = served[0]
    before = sorted(p.relative_to(db) for p in db.rglob("*"))
    version = client.get("/api/health").json()["store_version"]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    clip = served[1][1]  # an indexed mp3, uploaded under another name
    r = client.post(
        "/api/describe", files={"file": ("my clip.mp3", clip.read_bytes(), "audio/mpeg")}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["path"] == "my clip.mp3"
    assert body["duration"] == pytest.approx(6.0, abs=0.2)
    assert len(body["tags"]) == min(10, len(served[2].tag_names)) and len(body["texts"]) == 10
    assert all(set(t) == {"text", "score"} for t in body["tags"] + body["texts"])
    assert body["similar"][0]["id"] == ids["track01.mp3"]  # it finds itself in the library
    assert body["similar"][0]["score"] > 0.99
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone
    assert sorted(p.relative_to(db) for p in db.rglob("*")) == before
    assert client.get("/api/health").json()["store_version"] == version
    # the similar tracks came from the query library's index: the server holds one index
    assert client.app.state.service.describer._index is None


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("page.mp3", b"<!doctype html><html><body>not music</body></html>"),
        ("image.wav", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        ("script.flac", b"#!/bin/sh\nrm -rf /\n"),
        ("empty.ogg", b""),
    ],
)
def test_describe_sniffs_content_not_names(client: TestClient, name: str, data: bytes) -> None:
    assert_error(
        client.post("/api/describe", files={"file": (name, data, "audio/mpeg")}),
        415,
        "unsupported_media_type",
    )


def test_describe_reports_audio_that_does_not_decode(client: TestClient) -> None:
    fake = b"fLaC" + os.urandom(4000)  # looks like FLAC, is noise
    err = assert_error(
        client.post("/api/describe", files={"file": ("x.flac", fake)}), 422, "undecodable_audio"
    )
    assert "melodex-upload" not in err["message"]  # the temporary path is not shown


def test_describe_needs_a_file(client: TestClient) -> None:
    assert_error(client.post("/api/describe"), 422, "invalid_request")


def test_upload_size_and_decode_time_limits(served) -> None:
    db, music, model = served
    small = TestClient(
        create_app(ServeConfig(db=db, model=model, max_upload_bytes=100_000)),
        raise_server_exceptions=False,
        base_url=LOCAL,
    )
    buf = io.BytesIO()
    sf.write(buf, np.zeros(200_000, np.float32), 16000, format="WAV", subtype="PCM_16")
    assert_error(
        small.post("/api/describe", files={"file": ("big.wav", buf.getvalue())}),
        413,
        "payload_too_large",
    )
    slow = TestClient(
        create_app(ServeConfig(db=db, model=model, decode_timeout=0.001)), base_url=LOCAL
    )
    with music[0].open("rb") as f:
        assert_error(
            slow.post("/api/describe", files={"file": ("a.flac", f)}), 408, "decode_timeout"
        )


# -------------------------------------------------------------------------- safety


def test_token_guards_every_api_request(served) -> None:
    db, _, model = served
    guarded = TestClient(
        create_app(ServeConfig(db=db, model=model, token="s3cret")), base_url=LOCAL
    )
    for url in ("/api/health", "/api/search?q=piano", "/api/map", "/api/tracks/1/audio"):
        r = guarded.get(url)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    assert_error(guarded.post("/api/describe"), 401, "unauthorized")
    assert_error(guarded.get("/api/health", headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(guarded.get("/api/health?token=s3cre"), 401)
    assert guarded.get("/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert guarded.get("/api/health?token=s3cret").status_code == 200
    assert guarded.get("/").status_code == 200  # the page itself, which then sends the token


def test_saturated_server_answers_503(served) -> None:
    db, music, model = served
    busy = TestClient(
        create_app(ServeConfig(db=db, model=model, max_queries=0, max_heavy=0)), base_url=LOCAL
    )
    r = busy.get("/api/search", params={"q": "piano"})
    assert_error(r, 503, "busy")
    assert r.headers["retry-after"] == "1"
    assert_error(busy.get("/api/map"), 503, "busy")
    assert_error(busy.post("/api/describe", files={"file": ("a.flac", music[0].read_bytes())}), 503)


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    assert_error(client.get("/api/nope"), 404, "not_found")
    assert_error(client.delete("/api/health"), 405, "method_not_allowed")


def test_page_and_spec_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no other host
    spec = client.get("/openapi.json").json()
    assert {
        "/api/health",
        "/api/search",
        "/api/similar/{track_id}",
        "/api/tracks/{track_id}",
        "/api/tracks/{track_id}/audio",
        "/api/describe",
        "/api/text-sets",
        "/api/path.m3u",
        "/api/map",
    } <= set(spec["paths"])


# -------------------------------------------------------------------------- live updates


def test_a_second_indexer_run_is_seen_without_restart(tmp_path: Path, toy_model) -> None:
    music = tmp_path / "music"
    make_music(music, 2)
    db = tmp_path / "library"
    Library(db, model=toy_model).index(music)
    client = TestClient(create_app(ServeConfig(db=db, model=toy_model)), base_url=LOCAL)
    assert client.get("/api/health").json()["tracks"] == 2
    assert len(client.get("/api/map").json()["points"]) == 2
    assert len(client.get("/api/search", params={"q": "organ", "k": 10}).json()) == 2

    make_music(music, 1, offset=2)  # a new file, indexed by another Library (another writer)
    shutil.copy(music / "track00.flac", music / "copy.flac")
    report = Library(db, model=toy_model).index(music)
    assert len(report.added) == 2

    health = client.get("/api/health").json()
    assert health["tracks"] == 4
    hits = client.get("/api/search", params={"q": "organ", "k": 10}).json()
    assert {h["title"] for h in hits} >= {"Track 2"}
    assert len(hits) == 4
    new_id = next(h["id"] for h in hits if h["title"] == "Track 2")
    assert client.get(f"/api/tracks/{new_id}").status_code == 200
    assert client.get(f"/api/tracks/{new_id}/audio").status_code == 200
    assert len(client.get("/api/map").json()["points"]) == 4


def test_an_empty_or_missing_library_answers_empty(tmp_path: Path, toy_model) -> None:
    client = TestClient(
        create_app(ServeConfig(db=tmp_path / "nothing", model=toy_model)), base_url=LOCAL
    )
    health = client.get("/api/health").json()
    assert health["tracks"] == 0 and health["index"] is None
    assert client.get("/api/search", params={"q": "piano"}).json() == []
    assert client.get("/api/map").json()["points"] == []
    assert_error(client.get("/api/tracks/5"), 404)


# -------------------------------------------------------------------------- schemathesis


@pytest.mark.heavy  # schemathesis
def test_no_request_from_the_spec_makes_a_server_error(served) -> None:
    """Schemathesis, in process over ASGI: 20 generated requests per operation, no 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    db, _, model = served  # schemathesis's ASGI client sends Host: testserver
    app = create_app(ServeConfig(db=db, model=model, allow_hosts=("testserver",)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # 7 + playlist, playlist.m3u, path, path.m3u, duplicates, text-sets
    assert len(operations) == 13
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            case.call_and_validate(checks=[not_a_server_error], timeout=60)

        check()


def test_cli_refuses_an_open_host_without_a_token(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--token" in result.output


def test_a_burst_of_48_searches_queues_without_errors(served) -> None:
    from concurrent.futures import ThreadPoolExecutor

    db, _, model = served
    small = TestClient(
        create_app(ServeConfig(db=db, model=model, max_queries=2)), base_url="http://localhost"
    )
    with ThreadPoolExecutor(48) as pool:
        codes = list(
            pool.map(
                lambda i: small.get("/api/search", params={"q": f"q {i}"}).status_code, range(48)
            )
        )
    assert codes == [200] * 48
