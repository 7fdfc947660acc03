"""The web page end to end: real headless Chromium (Debian's) driven by Playwright, against a
real uvicorn server on a free loopback port, over a real small library."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"{CHROMIUM} is absent (Debian package chromium; scripts/setup.sh installs it)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
uvicorn = pytest.importorskip("uvicorn")

from melodex.library.library import Library  # noqa: E402
from melodex.serve import ServeConfig, create_app  # noqa: E402
from tests.music_fixtures import tone_piece, write_audio  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
TIMEOUT_MS = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, base_model):
    """A uvicorn server in a thread over a 3-track library; yields (base URL, music files)."""
    root = tmp_path_factory.mktemp("browser")
    kinds = ("plucked", "organ", "clicks")
    music = [
        write_audio(
            root / "music" / f"piece{i}{ext}",
            tone_piece(10 + i, 6.0, kind=kinds[i]),
            tags={"title": f"Piece {i}", "artist": "Browser Band"},
        )
        for i, ext in enumerate((".flac", ".mp3", ".ogg"))
    ]
    Library(root / "library", model=base_model).index(root / "music")
    app = create_app(ServeConfig(db=root / "library", model=base_model))
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", music
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=60_000)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    # bypass_csp: Playwright's string predicates need eval, which the page's CSP forbids
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server[0] + "/")
    pg.wait_for_function("document.getElementById('library-info').textContent.includes('3 tracks')")
    yield pg
    context.close()
    assert errors == [], errors  # no uncaught script error on the page


def search(pg, text: str) -> None:
    pg.locator("#q").fill("")
    pg.locator("#q").type(text, delay=20)  # as a person types: the debounce fires once
    pg.wait_for_function("document.querySelectorAll('#results li').length > 0")


def test_type_a_query_play_a_result_and_more_like_this(page) -> None:
    search(page, "organ")
    assert page.locator("#results li").count() == 3
    assert "results for" in page.locator("#status").inner_text()
    first_title = page.locator("#results li .title").first.inner_text()

    page.locator("#results li .play").first.click()
    page.wait_for_function(
        "(() => { const a = document.getElementById('player');"
        " return !a.paused && a.currentTime > 0.3; })()"
    )
    t0 = page.evaluate("document.getElementById('player').currentTime")
    page.wait_for_timeout(600)
    assert page.evaluate("document.getElementById('player').currentTime") > t0  # it advances
    assert first_title in page.locator("#now-playing").inner_text()

    page.locator("#results li .similar").first.click()
    # the final status ("2 tracks like ..."), not the interim "Finding tracks like ..."
    page.wait_for_function(
        "/^\\d+ tracks like/.test(document.getElementById('status').textContent)"
    )
    titles = page.locator("#results li .title").all_inner_texts()
    assert len(titles) == 2
    assert all(first_title not in t for t in titles)


def test_upload_a_clip_and_see_its_tags(page, server) -> None:
    clip = server[1][1]
    page.locator("#file").set_input_files(str(clip))
    page.wait_for_function("document.querySelectorAll('#tags li').length > 0")
    assert page.locator("#tags li").count() == 8
    assert page.locator("#texts li").count() == 8
    assert "Piece 1" in page.locator("#describe-hits li .title").first.inner_text()
    assert "piece1.mp3" in page.locator("#describe-status").inner_text()


def test_upload_of_a_non_audio_file_shows_the_reason(page, tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp3"
    bad.write_text("just text")
    page.locator("#file").set_input_files(str(bad))
    page.wait_for_function("document.getElementById('describe-status').classList.contains('error')")
    assert "not an audio file" in page.locator("#describe-status").inner_text()


def test_click_a_point_on_the_map_plays_it(page) -> None:
    page.wait_for_function("state.map && state.map.points.length === 3")
    x, y, id_str = page.evaluate(
        "(() => { const c = document.getElementById('map'); const p = state.map.points[2];"
        " const [x, y] = mapXY(c, p); return [x, y, p.id_str]; })()"
    )
    page.locator("#map").click(position={"x": x, "y": y})
    page.wait_for_function("!document.getElementById('player').paused")
    assert id_str in page.evaluate("document.getElementById('player').src")


def focused(pg) -> str:
    return pg.evaluate(
        "(() => { const e = document.activeElement;"
        " return e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + e.className; })()"
    )


def test_keyboard_only(page) -> None:
    page.keyboard.press("Tab")
    assert focused(page) == "a.skip"
    page.keyboard.press("Tab")
    assert focused(page) == "#q"
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
    )
    assert outline[0] != "none" and outline[1] >= 2  # a visible focus ring
    page.keyboard.type("string quartet")
    page.keyboard.press("Enter")  # Enter searches at once
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    order = []
    for _ in range(9):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order[0] == "button."  # the Search button
    assert order[1] == "summary."  # the (closed) filters
    assert order[2:8] == ["button.play", "button.similar secondary"] * 3
    assert order[8] == "#player"
    # from the player on to the file input and the map, then Enter plays a dot
    for _ in range(10):
        if focused(page) == "#map":
            break
        page.keyboard.press("Tab")
    assert focused(page) == "#map"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_function("!document.getElementById('player').paused")
    assert page.locator("#map-info").inner_text()  # the chosen dot is announced
    labels = page.evaluate(
        "[...document.querySelectorAll('input')].map(i => !!(i.labels && i.labels.length))"
    )
    assert labels and all(labels)


def test_phone_width_layout_and_screenshots(browser, server, tmp_path: Path) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, bypass_csp=True
    )
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(server[0] + "/")
    search(pg, "plucked guitar")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    boxes = pg.evaluate(
        "[...document.querySelectorAll('.panel, #q, #results button, canvas')]"
        ".map(e => e.getBoundingClientRect()).map(r => [r.left, r.right])"
    )
    assert all(left >= 0 and right <= 375 for left, right in boxes)
    # tap targets stay usable
    heights = pg.evaluate(
        "[...document.querySelectorAll('#results button')].map(b => b.getBoundingClientRect().height)"
    )
    assert min(heights) >= 36
    phone = tmp_path / "page-375.png"
    pg.screenshot(path=str(phone), full_page=True)
    context.close()
    assert phone.stat().st_size > 10_000
    wide = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = wide.new_page()
    pg.goto(server[0] + "/")
    search(pg, "plucked guitar")
    pg.screenshot(path=str(tmp_path / "page-1280.png"), full_page=True)
    wide.close()
    print(f"screenshots: {phone} and {tmp_path / 'page-1280.png'}")
