"""The page's filters, exclusion, play-from-moment, playlist, path and duplicates, in real
headless Chromium against a real uvicorn server over a small tagged library (toy model).

``MELODEX_SCREENSHOTS=docs`` also writes the page at 1280 and 375 px into that folder."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.test_serve_browser import CHROMIUM, FLAGS, TIMEOUT_MS, free_port

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
uvicorn = pytest.importorskip("uvicorn")

from melodex.library.library import Library  # noqa: E402
from melodex.serve import ServeConfig, create_app  # noqa: E402
from tests.library_fixtures import make_tagged_music  # noqa: E402
from tests.test_duplicates import ffmpeg  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, toy_model):
    root = tmp_path_factory.mktemp("page")
    paths = make_tagged_music(root / "music")
    ffmpeg(paths["emperor"], root / "music" / "copies" / "emperor.mp3", "-b:a", "96k")
    Library(root / "library", model=toy_model).index(root / "music")
    app = create_app(ServeConfig(db=root / "library", model=toy_model))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=60_000)
        yield b
        b.close()


def open_page(browser, server, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server + "/")
    pg.wait_for_function("document.getElementById('library-info').textContent.includes('9 tracks')")
    return context, pg, errors


@pytest.fixture()
def page(browser, server):
    context, pg, errors = open_page(browser, server)
    yield pg
    context.close()
    assert errors == [], errors


def results(pg, selector: str = "#results") -> list[str]:
    return pg.locator(f"{selector} li .title").all_inner_texts()


def test_filters_and_exclusion_narrow_the_search(page) -> None:
    page.locator("#q").fill("quartet")
    page.locator("#q").press("Enter")
    page.wait_for_function("document.querySelectorAll('#results li').length === 9")
    page.locator("#filters summary").click()
    page.locator("#f-artist").fill("haydn")
    page.wait_for_function("document.querySelectorAll('#results li').length === 3")
    assert set(results(page)) == {"Emperor quartet", "Sunrise quartet"}
    page.locator("#f-artist").fill("")
    page.locator("#f-genre").fill("folk")
    page.wait_for_function("document.querySelectorAll('#results li').length === 1")
    assert results(page) == ["Drowsy Maggie"]
    page.locator("#f-genre").fill("")
    page.locator("#f-year").fill("1500-1599")
    page.locator("#f-exclude").fill("clicks, band 2")
    page.wait_for_function("document.querySelectorAll('#results li').length === 3")
    assert set(results(page)) == {"Kyrie", "Gloria", "Sicut cervus"}
    page.locator("#f-year").fill("late")
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    assert "year" in page.locator("#status").inner_text()


def test_a_hit_plays_from_its_best_moment(page) -> None:
    page.locator("#q").fill("Haydn")
    page.locator("#q").press("Enter")
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    moment = page.evaluate(
        "fetch('/api/search?q=Haydn&k=10').then(r => r.json())"
        ".then(h => h.find(x => x.segment_start > 0))"
    )
    row = page.locator(f"#results li[data-id='{moment['id_str']}']")
    assert "best at" in row.locator(".sub").inner_text()
    row.locator(".play").click()
    page.wait_for_function("!document.getElementById('player').paused")
    assert page.evaluate("document.getElementById('player').src").endswith(
        f"#t={moment['segment_start']}"
    )
    # the element can report playing a moment before the fragment's seek lands: wait for it
    page.wait_for_function(
        f"document.getElementById('player').currentTime >= {moment['segment_start'] - 0.05}",
        timeout=TIMEOUT_MS,
    )


def test_make_play_and_download_a_playlist(page, server) -> None:
    page.locator("#pl-q").fill("Palestrina")
    page.locator("#pl-length").fill("12s")
    page.locator("#playlist-form button").click()
    page.wait_for_function("document.querySelectorAll('#playlist li').length === 3")
    assert set(results(page, "#playlist")) == {"Kyrie", "Gloria", "Sicut cervus"}
    assert "3 tracks" in page.locator("#pl-status").inner_text()
    href = page.locator("#pl-download").get_attribute("href")
    m3u = page.request.get(server + href).text()
    assert m3u.startswith("#EXTM3U") and m3u.count("/api/tracks/") == 3
    page.locator("#pl-play").click()
    first = page.locator("#playlist li").first.get_attribute("data-id")
    page.wait_for_function("!document.getElementById('player').paused")
    assert first in page.evaluate("document.getElementById('player').src")
    second = page.locator("#playlist li").nth(1).get_attribute("data-id")
    page.evaluate("document.getElementById('player').dispatchEvent(new Event('ended'))")
    page.wait_for_function(f"document.getElementById('player').src.includes('{second}')")


def test_path_and_duplicates(page) -> None:
    page.locator("#path-from").fill("Kyrie")
    page.locator("#path-to").fill("Drowsy Maggie")
    page.locator("#path-steps").fill("2")
    page.locator("#path-form button").click()
    page.wait_for_function("document.querySelectorAll('#path-list li').length === 4")
    titles = results(page, "#path-list")
    assert titles[0] == "Kyrie" and titles[-1] == "Drowsy Maggie" and len(set(titles)) == 4
    page.locator("#dups-find").click()
    page.wait_for_function("document.querySelectorAll('#dups li').length === 1")
    text = page.locator("#dups li").inner_text()
    assert "emperor.flac" in text and "emperor.mp3" in text
    assert "1 group" in page.locator("#dups-status").inner_text()


def test_screenshots_at_1280_and_375(browser, server, tmp_path: Path) -> None:
    folder = Path(os.environ.get("MELODEX_SCREENSHOTS") or tmp_path)
    for width, height in ((1280, 900), (375, 812)):
        context, pg, errors = open_page(browser, server, width, height)
        pg.locator("#q").fill("Palestrina")
        pg.locator("#q").press("Enter")
        pg.wait_for_function("document.querySelectorAll('#results li').length > 0")
        pg.locator("#filters summary").click()
        pg.locator("#pl-q").fill("Haydn")
        pg.locator("#playlist-form button").click()
        pg.wait_for_function("document.querySelectorAll('#playlist li').length > 0")
        assert pg.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        shot = folder / f"page-curate-{width}.png"
        pg.screenshot(path=str(shot), full_page=True)
        context.close()
        assert errors == [] and shot.stat().st_size > 10_000
