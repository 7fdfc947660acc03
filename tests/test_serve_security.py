"""The server answers only its own users: Host allowlist (DNS rebinding), Origin check, upload
size cut before the body, HEAD on audio, a removed library, token rules, files inside the roots.

In process with FastAPI's client and explicit Host/Origin headers, on the toy model.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from melodex.cli import app as cli  # noqa: E402
from melodex.library.library import Library  # noqa: E402
from melodex.library.store import track_id  # noqa: E402
from melodex.serve import ServeConfig, create_app  # noqa: E402
from melodex.serve.security import (  # noqa: E402
    MIN_PUBLIC_TOKEN_LENGTH,
    HostPolicy,
    check_token_strength,
    split_host,
    under_roots,
)
from tests.music_fixtures import tone_piece, write_audio  # noqa: E402

LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, toy_model) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("secure")
    music = root / "music"
    for i in range(3):
        write_audio(music / f"t{i}.flac", tone_piece(i, 3.0), tags={"title": f"choir {i}"})
    Library(root / "db", model=toy_model).index(music)
    return root / "db", music


def _client(db: Path, model, **config) -> TestClient:
    return TestClient(
        create_app(ServeConfig(db=db, model=model, **config)),
        base_url=LOCAL,
        raise_server_exceptions=False,
    )


@pytest.fixture(scope="module")
def client(library, toy_model) -> TestClient:
    return _client(library[0], toy_model)


# --------------------------------------------------------------------------- Host (rebinding)


def test_rebinding_host_is_refused(client: TestClient) -> None:
    """The issue's curl: Host: rebind.attacker.example on the loopback server."""
    r = client.get(
        "/api/search", params={"q": "choir"}, headers={"Host": "rebind.attacker.example"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_host"
    assert "choir" not in r.text
    for host in ("attacker.example:8000", "localhost.attacker.example", ""):
        assert client.get("/api/health", headers={"Host": host}).status_code == 403, host
    assert client.get("/", headers={"Host": "rebind.attacker.example"}).status_code == 403


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "192.168.1.20:80"]
)
def test_loopback_names_and_ip_literals_pass(client: TestClient, host: str) -> None:
    assert client.get("/api/health", headers={"Host": host}).status_code == 200


def test_allow_host_and_bound_host_pass(library, toy_model) -> None:
    c = _client(library[0], toy_model, bind_host="music.lan", allow_hosts=("box.example",))
    for host in ("music.lan:8000", "BOX.example", "box.example."):
        assert c.get("/api/health", headers={"Host": host}).status_code == 200, host
    assert c.get("/api/health", headers={"Host": "other.example"}).status_code == 403
    anyhost = _client(library[0], toy_model, allow_hosts=("*",))
    assert anyhost.get("/api/health", headers={"Host": "other.example"}).status_code == 200


def test_host_parsing() -> None:
    assert split_host("[::1]:8000") == "::1"
    assert split_host("Example.COM.:80") == "example.com"
    policy = HostPolicy("0.0.0.0")
    assert policy.allows("10.0.0.5:8000") and not policy.allows("evil.example")
    assert not policy.allows(None)


# --------------------------------------------------------------------------- Origin


def test_cross_origin_upload_is_refused(client: TestClient, library) -> None:
    clip = (library[1] / "t0.flac").read_bytes()
    for origin in ("https://attacker.example", "null"):
        r = client.post(
            "/api/describe", files={"file": ("a.flac", clip)}, headers={"Origin": origin}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_origin", origin
    r = client.post(
        "/api/describe", files={"file": ("a.flac", clip)}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403


@pytest.mark.heavy  # the upload is decoded in a child process
def test_same_origin_upload_passes(client: TestClient, library) -> None:
    clip = (library[1] / "t0.flac").read_bytes()
    r = client.post(
        "/api/describe",
        files={"file": ("a.flac", clip)},
        headers={"Origin": "http://localhost:8000", "Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 200, r.text


def test_reads_from_other_origins_still_need_the_host(client: TestClient) -> None:
    """GET carries no state change; the browser's same-origin policy keeps the answer."""
    r = client.get("/api/health", headers={"Origin": "https://attacker.example"})
    assert r.status_code == 200


# --------------------------------------------------------------------------- uploads


def test_declared_oversize_upload_is_refused_before_reading(library, toy_model) -> None:
    c = _client(library[0], toy_model, max_upload_bytes=100_000)
    consumed = []

    def body():  # a generator: what the server reads of it is what it consumed
        for _ in range(50):
            consumed.append(1)
            yield b"\0" * 100_000

    r = c.post(
        "/api/describe",
        content=body(),
        headers={
            "Content-Length": str(5_000_000),
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert len(consumed) <= 1  # refused on the header, not after 5 MB


def test_streamed_upload_is_cut_at_the_limit(library, toy_model) -> None:
    """Chunked (no Content-Length): the app reads ~100 kB of a 5 MB body, then answers 413.

    Driven at the ASGI level, because the test client reads the whole body before sending."""
    import asyncio

    web = create_app(ServeConfig(db=library[0], model=toy_model, max_upload_bytes=100_000))
    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    chunks = [head] + [b"\0" * 50_000] * 100
    taken, sent = [], []

    async def receive() -> dict:
        taken.append(1)
        body = chunks[len(taken) - 1] if len(taken) <= len(chunks) else b""
        return {"type": "http.request", "body": body, "more_body": len(taken) < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/describe",
        "raw_path": b"/api/describe",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(web(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert len(taken) <= 5  # stopped past 100 kB + 64 kB of envelope room, not after 5 MB


def test_uploads_past_the_gate_get_503_before_their_body(library, toy_model) -> None:
    c = _client(library[0], toy_model, max_heavy=0)
    r = c.post("/api/describe", files={"file": ("a.flac", io.BytesIO(b"fLaC" + b"\0" * 1000))})
    assert r.status_code == 503 and r.json()["error"]["code"] == "busy"


# --------------------------------------------------------------------------- audio


def test_head_on_audio(client: TestClient, library) -> None:
    tid = track_id(str(library[1] / "t1.flac"))
    head = client.head(f"/api/tracks/{tid}/audio")
    assert head.status_code == 200 and head.content == b""
    size = (library[1] / "t1.flac").stat().st_size
    assert int(head.headers["content-length"]) == size
    assert head.headers["content-type"] == "audio/flac"


def test_audio_only_from_inside_the_indexed_root(tmp_path: Path, toy_model) -> None:
    """A track stored under a folder that is now a link to elsewhere is not streamed."""
    music, outside = tmp_path / "music", tmp_path / "outside"
    write_audio(music / "sub" / "a.flac", tone_piece(1, 3.0))
    Library(tmp_path / "db", model=toy_model).index(music)
    c = _client(tmp_path / "db", toy_model)
    tid = track_id(str(music / "sub" / "a.flac"))
    assert c.get(f"/api/tracks/{tid}/audio").status_code == 200
    shutil.move(music / "sub", outside)  # same file (size, mtime) now reached through a link
    (music / "sub").symlink_to(outside)
    r = c.get(f"/api/tracks/{tid}/audio")
    assert r.status_code == 404 and r.json()["error"]["code"] == "file_missing"


def test_under_roots() -> None:
    assert under_roots("/music/a/b.flac", ["/music"])
    assert not under_roots("/musicx/b.flac", ["/music"])
    assert not under_roots("/etc/passwd", ["/music"])


# --------------------------------------------------------------------------- library, tokens


def test_removed_library_answers_library_unavailable(tmp_path: Path, toy_model) -> None:
    write_audio(tmp_path / "music" / "a.flac", tone_piece(2, 3.0))
    Library(tmp_path / "db", model=toy_model).index(tmp_path / "music")
    c = _client(tmp_path / "db", toy_model)
    assert c.get("/api/search", params={"q": "x"}).status_code == 200
    shutil.rmtree(tmp_path / "db")
    for url in ("/api/search?q=x", "/api/health", "/api/map", "/api/tracks/1"):
        r = c.get(url)
        assert r.status_code == 503, (url, r.text)
        assert r.json()["error"]["code"] == "library_unavailable"


def test_serve_refuses_a_missing_db(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "typo")])
    assert res.exit_code == 1
    assert "no library" in res.output and "typo" in res.output


def test_weak_tokens_refused_for_public_binding(tmp_path: Path) -> None:
    assert check_token_strength("s3cret", public=True)
    assert check_token_strength("a" * 40, public=True)
    assert check_token_strength("s3cret", public=False) is None
    assert check_token_strength("k8Jq2-vXw9_LmP4zR7tY", public=True) is None
    res = CliRunner().invoke(
        cli, ["serve", "--db", str(tmp_path), "--host", "0.0.0.0", "--token", "s3cret"]
    )
    assert res.exit_code == 2 and str(MIN_PUBLIC_TOKEN_LENGTH) in res.output


def test_token_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both reach the token check (a weak one is refused the same way), and neither is argv."""
    weak = tmp_path / "token"
    weak.write_text("short\n")
    res = CliRunner().invoke(
        cli, ["serve", "--db", str(tmp_path), "--host", "0.0.0.0", "--token-file", str(weak)]
    )
    assert res.exit_code == 2 and "5 characters" in res.output
    res = CliRunner().invoke(
        cli, ["serve", "--db", str(tmp_path), "--host", "0.0.0.0"], env={"MELODEX_TOKEN": "tiny"}
    )
    assert res.exit_code == 2 and "4 characters" in res.output
    empty = tmp_path / "empty"
    empty.write_text("\n")
    res = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path), "--token-file", str(empty)])
    assert res.exit_code == 1 and "empty" in res.output
    assert os.environ.get("MELODEX_TOKEN") is None


@pytest.mark.heavy  # a real uvicorn server on a loopback port
def test_rebinding_curl_against_a_real_server(library, toy_model) -> None:
    """The issue's repro over a socket: `curl -H 'Host: rebind.attacker.example' 127.0.0.1:P/...`."""
    import http.client
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web = create_app(ServeConfig(db=library[0], model=toy_model, bind_host="127.0.0.1"))
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        def get(host: str) -> tuple[int, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/search?q=choir", headers={"Host": host})
            r = conn.getresponse()
            return r.status, r.read()

        status, body = get("rebind.attacker.example")
        assert status == 403 and b"forbidden_host" in body and b"choir" not in body
        status, body = get(f"127.0.0.1:{port}")
        assert status == 200 and b"choir" in body
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --------------------------------------------------------------------------- guard (pure ASGI)


def test_safety_headers_on_api_page_and_refusals(client: TestClient, library, toy_model) -> None:
    api, page = client.get("/api/health"), client.get("/")
    for r in (api, page):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" not in api.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    refused = _client(library[0], toy_model, token="t" * 20).get("/api/health")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_guard_turns_a_plain_text_api_error_into_json() -> None:
    """An /api error some inner part answered in plain text gets the JSON shape and the safety
    headers; a page's plain-text error and an /api answer's own header are left alone."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from melodex.serve.guard import GuardMiddleware

    def too_big(_request) -> PlainTextResponse:
        return PlainTextResponse("too big", status_code=413)

    def own_header(_request) -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"Referrer-Policy": "same-origin"})

    inner = Starlette(
        routes=[Route("/api/up", too_big), Route("/up", too_big), Route("/api/ok", own_header)]
    )
    guarded = TestClient(GuardMiddleware(inner, token=None, max_upload_bytes=5 * 2**20))
    r = guarded.get("/api/up")
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"
    assert r.json() == {
        "error": {"code": "payload_too_large", "message": "the upload is larger than 5 MB"}
    }
    page = guarded.get("/up")
    assert page.status_code == 413 and page.text == "too big"
    assert "content-security-policy" in page.headers
    assert guarded.get("/api/ok").headers["referrer-policy"] == "same-origin"


def test_no_base_http_middleware_in_the_stack(client: TestClient) -> None:
    """Starlette's BaseHTTPMiddleware costs an extra task and stream per request."""
    from starlette.middleware.base import BaseHTTPMiddleware

    assert not [m for m in client.app.user_middleware if issubclass(m.cls, BaseHTTPMiddleware)]
