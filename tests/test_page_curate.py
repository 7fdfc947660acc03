"""The page's filters (tags, folder, tempo, key), exclusion, play-from-moment, playlist, path
(play in order, M3U), duplicates and describe against a held text set, in real
headless Chromium against a real uvicorn server over a small tagged library (toy model).

``MELODEX_SCREENSHOTS=docs`` also writes the page at 1280 and 375 px into that folder."""

from __future__ import annotations

import json
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


#: a user's text set: (item, kind, text); one text tries to inject HTML
REVIEWS = (
    ("kyrie", "review", "a slow organ mass, the voices drone"),
    ("kyrie", "caption", "sacred polyphony on a church organ"),
    ("reel", "review", "a fast fiddle reel with clicks"),
    ("reel", "tag", "folk, dance"),
    ("emperor", "review", 'plucked strings <img src=x onerror="window.pwned=1"> & more'),
    ("emperor", "caption", "a string quartet, plucked"),
)


def write_reviews(path: Path) -> Path:
    items: dict[str, list] = {}
    for item, kind, text in REVIEWS:
        items.setdefault(item, []).append({"kind": kind, "text": text})
    lines = [json.dumps({"id": i, "audio": f"{i}.flac", "tags": [], "split": "test", "texts": t})
             for i, t in items.items()]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, toy_model):
    """(base URL, music files): the tagged library with descriptors, an MP3 copy of one track
    and a text set the library holds, served by uvicorn in a thread."""
    root = tmp_path_factory.mktemp("page")
    paths = make_tagged_music(root / "music")
    ffmpeg(paths["emperor"], root / "music" / "copies" / "emperor.mp3", "-b:a", "96k")
    lib = Library(root / "library", model=toy_model)
    lib.index(root / "music", descriptors=True)
    lib.describe(paths["reel"], k=1, texts=write_reviews(root / "reviews.jsonl"))  # keeps the set
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
    yield f"http://127.0.0.1:{port}", paths
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(site) -> str:
    return site[0]


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
    assert page.locator("#pl-actions").is_hidden()  # nothing to play or download yet
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


def test_a_playlist_takes_the_tempo_key_and_exclusion_filters(page, server) -> None:
    everything = page.evaluate("fetch('/api/search?q=quartet&k=20').then(r => r.json())")
    mode = everything[0]["mode"]
    same_mode = {h["id_str"] for h in everything if h["mode"] == mode}
    assert 0 < len(same_mode) < len(everything)
    page.locator("#filters summary").click()
    page.locator("#f-key").select_option(mode)
    page.locator("#f-exclude").fill("clicks")
    page.locator("#pl-q").fill("quartet")
    page.locator("#pl-length").fill("1h")
    page.locator("#playlist-form button").click()
    page.wait_for_function(f"document.querySelectorAll('#playlist li').length === {len(same_mode)}")
    ids = page.locator("#playlist li").evaluate_all("els => els.map(e => e.dataset.id)")
    assert set(ids) == same_mode
    href = page.locator("#pl-download").get_attribute("href")
    assert f"key={mode}" in href and "exclude=clicks" in href
    assert page.request.get(server + href).text().count("/api/tracks/") == len(same_mode)
    page.locator("#f-key").select_option("")
    page.locator("#f-bpm-min").fill("90")
    page.locator("#f-bpm-max").fill("60")
    page.locator("#playlist-form button").click()
    page.wait_for_function("document.getElementById('pl-status').classList.contains('error')")
    assert "bpm" in page.locator("#pl-status").inner_text()


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


def shown_ids(pg, ids: set[str]) -> None:
    """Wait until #results holds exactly the tracks ``ids``."""
    want = json.dumps(sorted(ids), separators=(",", ":"))  # as JSON.stringify writes it
    pg.wait_for_function(
        "JSON.stringify([...document.querySelectorAll('#results li')].map(li => li.dataset.id)"
        f".sort()) === {want!r}"
    )


def test_folder_tempo_and_key_filters(page) -> None:
    everything = page.evaluate("fetch('/api/search?q=quartet&k=20').then(r => r.json())")
    assert len(everything) == 9 and all(h["bpm"] and h["mode"] for h in everything)
    page.locator("#q").fill("quartet")
    page.locator("#q").press("Enter")
    shown_ids(page, {h["id_str"] for h in everything})
    page.locator("#filters summary").click()
    page.locator("#f-folder").fill("haydn_q")  # the copy in copies/ is left out
    shown_ids(
        page, {h["id_str"] for h in everything if h["path"] in ("emperor.flac", "sunrise.flac")}
    )
    page.locator("#f-folder").fill("")
    target = everything[0]["bpm"]
    lo, hi = int(target - 1), int(target + 2)
    page.locator("#f-bpm-min").fill(str(lo))
    page.locator("#f-bpm-max").fill(str(hi))
    in_range = {h["id_str"] for h in everything
                if any(lo <= h["bpm"] * f <= hi for f in (1, 2, 0.5))}  # fmt: skip
    assert everything[0]["id_str"] in in_range and len(in_range) < 9
    shown_ids(page, in_range)
    assert "BPM" in page.locator("#results li .sub").first.inner_text()
    page.locator("#f-bpm-min").fill("")
    page.locator("#f-bpm-max").fill("")
    mode = everything[0]["mode"]
    page.locator("#f-key").select_option(mode)
    shown_ids(page, {h["id_str"] for h in everything if h["mode"] == mode})
    tonic = f"{everything[0]['key']} {mode}"
    page.locator("#f-key").select_option(tonic)
    shown_ids(page, {h["id_str"] for h in everything if f"{h['key']} {h['mode']}" == tonic})
    page.locator("#f-key").select_option("")
    page.locator("#f-bpm-min").fill("90")
    page.locator("#f-bpm-max").fill("60")
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    assert "bpm" in page.locator("#status").inner_text()


def test_describe_ranks_a_held_text_set_with_sources(page, site) -> None:
    server, paths = site
    sets = page.evaluate("fetch('/api/text-sets').then(r => r.json())")
    assert [s["name"] for s in sets] == ["reviews.jsonl"]
    page.wait_for_function("document.querySelectorAll('#text-set option').length === 2")
    assert page.locator("#text-kind").is_disabled()
    page.locator("#file").set_input_files(str(paths["kyrie"]))
    page.wait_for_function("document.querySelectorAll('#tags li').length > 0")
    assert page.locator("#matches-out").is_hidden()  # built-in phrases only
    page.locator("#text-set").select_option(sets[0]["id"])  # the last upload is described again
    page.wait_for_function("document.querySelectorAll('#matches li').length === 6")
    with open(paths["kyrie"], "rb") as f:
        api = page.request.post(
            f"{server}/api/describe?k=8&texts={sets[0]['id']}",
            multipart={
                "file": {"name": "kyrie.flac", "mimeType": "audio/flac", "buffer": f.read()}
            },
        ).json()["matches"]
    shown = page.locator("#matches li .text").all_inner_texts()
    assert shown == [m["text"] for m in api]  # the API's ranking, best first
    sources = page.locator("#matches li .source").all_inner_texts()
    assert sources == [f"{m['kind']} · from {m['item']}" for m in api]
    assert {(i, k, t) for i, k, t in REVIEWS} == {(m["item"], m["kind"], m["text"]) for m in api}
    assert "reviews.jsonl" in page.locator("#matches-heading").inner_text()
    # a text holding HTML is shown as text, never run
    assert any("<img" in t for t in shown) and page.locator("#matches img").count() == 0
    assert page.evaluate("window.pwned") is None
    page.locator("#text-kind").select_option("review")
    page.wait_for_function("document.querySelectorAll('#matches li').length === 3")
    assert all(
        x.startswith("review · ") for x in page.locator("#matches .source").all_inner_texts()
    )
    page.locator("#text-set").select_option("")
    page.wait_for_function("document.getElementById('matches-out').hidden")
    assert page.locator("#text-kind").is_disabled()


def test_path_plays_in_order_and_downloads_as_m3u(page, server) -> None:
    assert page.locator("#path-actions").is_hidden()
    page.locator("#path-from").fill("Kyrie")
    page.locator("#path-to").fill("Drowsy Maggie")
    page.locator("#path-steps").fill("2")
    page.locator("#path-form button").click()
    page.wait_for_function("document.querySelectorAll('#path-list li').length === 4")
    ids = [li.get_attribute("data-id") for li in page.locator("#path-list li").all()]
    href = page.locator("#path-download").get_attribute("href")
    m3u = page.request.get(server + href)
    assert "melodex-path.m3u" in m3u.headers["content-disposition"]
    urls = [x for x in m3u.text().splitlines() if x and not x.startswith("#")]
    assert urls == [f"{server}/api/tracks/{i}/audio" for i in ids]  # the path's order
    page.locator("#path-play").click()
    page.wait_for_function("!document.getElementById('player').paused")
    assert f"/api/tracks/{ids[0]}/audio" in page.evaluate("document.getElementById('player').src")
    for nxt in ids[1:]:
        page.evaluate("document.getElementById('player').dispatchEvent(new Event('ended'))")
        page.wait_for_function(
            f"document.getElementById('player').src.includes('/api/tracks/{nxt}/audio')"
        )
    assert "Drowsy Maggie" in page.locator("#now-playing").inner_text()


def test_screenshots_at_1280_and_375(browser, server, site, tmp_path: Path) -> None:
    folder = Path(os.environ.get("MELODEX_SCREENSHOTS") or tmp_path)
    for width, height in ((1280, 900), (375, 812)):
        context, pg, errors = open_page(browser, server, width, height)
        pg.locator("#q").fill("Palestrina")
        pg.locator("#q").press("Enter")
        pg.wait_for_function("document.querySelectorAll('#results li').length > 0")
        pg.locator("#filters summary").click()
        pg.wait_for_function("document.querySelectorAll('#text-set option').length === 2")
        pg.locator("#text-set").select_option(index=1)
        pg.locator("#file").set_input_files(str(site[1]["reel"]))
        pg.wait_for_function("document.querySelectorAll('#matches li').length > 0")
        pg.locator("#pl-q").fill("Haydn")
        pg.locator("#playlist-form button").click()
        pg.wait_for_function("document.querySelectorAll('#playlist li').length > 0")
        assert pg.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        shot = folder / f"page-curate-{width}.png"
        pg.screenshot(path=str(shot), full_page=True)
        context.close()
        assert errors == [] and shot.stat().st_size > 10_000
