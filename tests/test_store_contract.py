"""The store contract: the embedded LanceDB store and the Chroma server store behave the same.

Every contract test runs on both backends. The Chroma side talks to a real ``chroma run``
server started on 127.0.0.1 once per session; a missing ``chroma`` executable fails the run
(CI installs it with the dev extra). Chroma stores read in pages of 7 records here, so every
read of these small stores crosses page boundaries.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from melodex.descriptors import parse_key_filter
from melodex.errors import StoreError
from melodex.library.backends import LibraryStore, is_store_url, open_existing, open_store
from melodex.library.chroma_store import ChromaStore, parse_location
from melodex.library.library import Library
from melodex.library.store import Store, TrackRow
from melodex.library.vector_index import VectorIndex
from tests.music_fixtures import tone_piece, write_audio

DIM = 8
CHROMA_PAGE = 7
BACKENDS = ("lance", pytest.param("chroma", marks=pytest.mark.heavy))

#: The base URL of in-process clients: a loopback Host, which the server answers by default.
LOCAL = "http://localhost"


# -- the server -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chroma_executable() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        pytest.fail("the `chroma` executable is missing: install the dev extra (chromadb)")
    return found


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server on a free loopback port: yields "127.0.0.1:PORT"."""
    folder = tmp_path_factory.mktemp("chroma")
    port = _free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (open for the session)
    proc = subprocess.Popen(
        [_chroma_executable(), "run", "--path", str(folder / "data"), "--host", "127.0.0.1"]
        + ["--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited ({proc.returncode}): {_tail(folder)}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1
                ) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer its heartbeat in 60 s: {_tail(folder)}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _tail(folder: Path) -> str:
    return (folder / "server.log").read_text(errors="replace")[-2000:]


def _chroma_url(server: str, prefix: str = "t") -> str:
    return f"chroma://{server}/{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., LibraryStore]:
    """``opener(create=False)``: a new handle on one fresh store of the backend under test."""
    if request.param == "lance":
        folder = tmp_path / "db"
        return lambda create=False: Store(folder, create=create)
    url = _chroma_url(request.getfixturevalue("chroma_server"))
    return lambda create=False, **kw: ChromaStore(url, create=create, page_size=CHROMA_PAGE, **kw)


# -- rows -------------------------------------------------------------------------------------
DESCRIBED = [  # bpm, key, mode
    (60.0, "D", "minor"),
    (120.0, "D", "major"),
    (121.5, "F#", "minor"),
    (90.0, "Bb", "minor"),
    (None, None, None),
    (240.5, "A", "major"),
]


def make_rows(ids: range | list[int], seed: int, *, described: bool = False) -> list[TrackRow]:
    """Rows with every kind of field: None and text tags, 0-3 windows, optional descriptors."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, i in enumerate(ids):
        v = rng.standard_normal(DIM).astype(np.float32)
        v /= np.linalg.norm(v)
        windows = rng.standard_normal((n % 4, DIM)).astype(np.float32)
        bpm, key, mode = DESCRIBED[n % len(DESCRIBED)] if described else (None, None, None)
        rows.append(
            TrackRow(
                id=i,
                path=f"/music/{seed}/track {i}.flac",
                content_hash=f"h{seed}-{i}",
                size=1000 + i,
                mtime_ns=1_700_000_000_123_456_789 + i,
                duration=3.3 + i,
                title=None if n % 3 == 0 else f"Title {i}",
                artist=f"Artist {n % 2}",
                album=None,
                genre="Test" if n % 2 else None,
                vector=v,
                window_vectors=windows,
                window_starts=np.arange(len(windows), dtype=np.float32) * 3,
                tag_scores=rng.random(5).astype(np.float32),
                bpm=bpm,
                bpm_confidence=None if bpm is None else 0.7,
                key=key,
                mode=mode,
                key_confidence=None if key is None else 0.55,
                loudness_lufs=None if bpm is None else -14.2,
            )
        )
    return rows


def expected_row(row: TrackRow) -> dict:
    """What ``rows()`` returns for a TrackRow (float32 columns as float32 values)."""

    def f32(x: float | None) -> float | None:
        return None if x is None else float(np.float32(x))

    return {
        "id": row.id,
        "path": row.path,
        "content_hash": row.content_hash,
        "size": row.size,
        "mtime_ns": row.mtime_ns,
        "duration": f32(row.duration),
        "title": row.title,
        "artist": row.artist,
        "album": row.album,
        "genre": row.genre,
        "vector": np.asarray(row.vector, np.float32).tolist(),
        "window_vectors": np.asarray(row.window_vectors, np.float32).tolist(),
        "window_starts": np.asarray(row.window_starts, np.float32).tolist(),
        "tag_scores": np.asarray(row.tag_scores, np.float32).tolist(),
        "bpm": f32(row.bpm),
        "bpm_confidence": f32(row.bpm_confidence),
        "key": row.key,
        "mode": row.mode,
        "key_confidence": f32(row.key_confidence),
        "loudness_lufs": f32(row.loudness_lufs),
    }


def without_time(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "indexed_at"}


def bound(opener: Callable[..., LibraryStore]) -> LibraryStore:
    store = opener(create=True)
    store.bind_model("m@1", "m", DIM)
    return store


# -- the contract ----------------------------------------------------------------------------
def test_a_missing_store_is_refused_until_created(opener: Callable[..., LibraryStore]) -> None:
    with pytest.raises(StoreError, match="no library here"):
        opener()
    store = opener(create=True)
    assert (len(store), store.meta, store.dim) == (0, {}, None)
    assert store.ids().tolist() == [] and store.rows() == [] and store.file_states() == {}
    assert store.newest_indexed_at() == 0.0
    ids, vectors = store.vectors()
    assert ids.shape == (0,) and vectors.shape[0] == 0
    with pytest.raises(StoreError, match="bind a model"):
        store.upsert(make_rows([1], 0))


def test_a_store_refuses_another_models_vectors(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    assert (store.meta["model"], store.meta["model_name"], store.dim) == ("m@1", "m", DIM)
    again = opener()
    again.bind_model("m@1", "m", DIM)  # the same model: fine
    again.check_model("m@1")
    with pytest.raises(StoreError, match="indexed with model m@1, not other@2"):
        again.bind_model("other@2", "other", DIM)
    with pytest.raises(StoreError, match="indexed with model m@1, but queries use other@2"):
        again.check_model("other@2")
    with pytest.raises(StoreError, match="vector of shape"):
        store.upsert([_wrong_dim()])


def _wrong_dim() -> TrackRow:
    row = make_rows([9], 0)[0]
    row.vector = np.ones(DIM + 1, np.float32) / np.sqrt(DIM + 1)
    return row


def test_upsert_replaces_by_id_and_delete_removes(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    first = make_rows(range(1, 16), 0, described=True)
    store.upsert(first)
    assert len(store) == 15
    # same ids; other paths, vectors, windows; fields that were set are now None
    replaced = make_rows(range(2, 5), 1)
    store.upsert(replaced)
    assert len(store) == 15
    rows = {r["id"]: without_time(r) for r in store.rows()}
    assert rows == {r.id: expected_row(r) for r in [first[0], *replaced, *first[4:]]}
    assert rows[2]["title"] is None and rows[2]["bpm"] is None
    store.delete([4, 5, 999])  # an unknown id is ignored
    assert len(store) == 13
    assert sorted(store.ids().tolist()) == [1, 2, 3, *range(6, 16)]
    store.delete([])
    store.upsert([])
    assert len(store) == 13


def test_rows_by_id_keep_the_order_asked_and_the_columns(
    opener: Callable[..., LibraryStore],
) -> None:
    store = bound(opener)
    written = make_rows(range(100, 120), 0, described=True)
    store.upsert(written)
    by_id = {r.id: r for r in written}
    asked = [117, 101, 999, 110, 101]
    got = store.rows(asked)
    assert [r["id"] for r in got] == [117, 101, 110, 101]  # unknown skipped, repeats kept
    assert without_time(got[0]) == expected_row(by_id[117])
    assert set(got[0]) == {*expected_row(by_id[117]), "indexed_at"}
    some = store.rows([103, 102], columns=["path", "window_vectors"])
    assert some == [
        {"id": i, "path": by_id[i].path, "window_vectors": by_id[i].window_vectors.tolist()}
        for i in (103, 102)
    ]
    assert store.rows([], columns=["path"]) == []
    every = store.rows(columns=["id", "title"])
    assert sorted(every, key=lambda r: r["id"]) == [{"id": r.id, "title": r.title} for r in written]
    assert all(set(r) == {"id", "title"} for r in every)


def test_vectors_since_a_write_time(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    early = make_rows(range(1, 11), 0)
    store.upsert(early)
    seen = store.newest_indexed_at()
    assert abs(seen - time.time()) < 60
    time.sleep(0.01)
    late = make_rows(range(20, 29), 1)
    store.upsert(late)
    assert store.newest_indexed_at() > seen
    ids, vectors = store.vectors(since=seen)
    assert sorted(ids.tolist()) == list(range(20, 29))
    ids, vectors = store.vectors()
    assert vectors.dtype == np.float32 and vectors.shape == (19, DIM)
    expected = {r.id: r.vector for r in [*early, *late]}
    for i, v in zip(ids.tolist(), vectors, strict=True):
        np.testing.assert_array_equal(v, expected[i])
    assert store.vectors(since=store.newest_indexed_at())[0].tolist() == []
    store.delete([r.id for r in late])  # the newest rows gone: the newest write is older again
    assert store.newest_indexed_at() == seen


def test_find_path_with_quotes_and_non_ascii(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    names = [
        '/music/it\'s a "quoted" name.flac',
        "/music/Ünïcødé — 曲名 🎵.ogg",
        "/music/back\\slash; DROP TABLE tracks; --.mp3",
        b"/music/caf\xe9 (latin-1 bytes).flac".decode("utf-8", "surrogateescape"),
        "/music/plain.wav",
    ]
    rows = make_rows(range(1, 6), 0)
    for row, name in zip(rows, names, strict=True):
        row.path = name
    store.upsert(rows)
    for row in rows:
        found = store.find_path(row.path)
        assert found is not None and without_time(found) == expected_row(row)
    assert store.find_path("/music/it's a") is None
    assert store.find_path("/music/PLAIN.wav") is None
    assert set(store.file_states()) == set(names)


def test_file_states(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    rows = make_rows(range(1, 13), 0, described=True)
    store.upsert(rows)
    states = store.file_states()
    assert len(states) == 12
    for row in rows:
        state = states[row.path]
        assert (state.id, state.content_hash, state.size, state.mtime_ns) == (
            row.id,
            row.content_hash,
            row.size,
            row.mtime_ns,
        )
        assert state.has_descriptors == (row.bpm_confidence is not None)


def test_filtered_ids(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    store.upsert(make_rows(range(1, 7), 0))
    with pytest.raises(StoreError, match="--descriptors"):
        store.filtered_ids(key=parse_key_filter("minor"))
    rows = make_rows(range(1, 19), 1, described=True)
    store.upsert(rows)

    def expect(bpm: tuple[float, float] | None, key: str | None, octaves: bool = True) -> list:
        keyf = None if key is None else parse_key_filter(key)
        factors = (1.0, 2.0, 0.5) if octaves else (1.0,)
        out = []
        for r in rows:
            b = None if r.bpm is None else float(np.float32(r.bpm))
            if bpm and (b is None or not any(bpm[0] <= b * f <= bpm[1] for f in factors)):
                continue
            if keyf and not keyf(r.key, r.mode):
                continue
            out.append(r.id)
        return sorted(out)

    cases = [
        ((115.0, 125.0), None, True),  # 60 doubled, 120, 121.5, 240.5 halved
        ((115.0, 125.0), None, False),
        ((120.0, 120.0), None, True),  # bounds are inclusive
        (None, "minor", True),
        (None, "D", True),
        (None, "Gb minor", True),  # F# minor, spelled the other way
        (None, "A#", True),
        ((100.0, 130.0), "D minor", True),
        ((300.0, 400.0), None, False),
    ]
    for bpm, key, octaves in cases:
        keyf = None if key is None else parse_key_filter(key)
        got = store.filtered_ids(bpm=bpm, key=keyf, octaves=octaves)
        assert got.dtype == np.int64
        assert sorted(got.tolist()) == expect(bpm, key, octaves), (bpm, key, octaves)
        assert expect(bpm, key, octaves) or bpm == (300.0, 400.0)
    # any callable works as a key rule (here: keys spelled with a sharp)
    sharp = store.filtered_ids(key=lambda k, m: k is not None and "#" in k)
    assert sorted(sharp.tolist()) == sorted(r.id for r in rows if r.key and "#" in r.key)


def test_versions_change_with_writes_and_other_handles_see_them(
    opener: Callable[..., LibraryStore],
) -> None:
    store = bound(opener)
    other = opener()
    v0 = store.version
    store.upsert(make_rows(range(1, 9), 0))
    v1 = store.version
    store.delete([1, 2])
    v2 = store.version
    assert v0 < v1 < v2
    other.refresh()
    assert (other.version, len(other), other.meta["model"]) == (v2, 6, "m@1")
    store.compact()  # an optimisation only: the rows stay
    other.refresh()
    assert len(other) == 6 and sorted(other.ids().tolist()) == list(range(3, 9))


def test_one_writer_at_a_time(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    second = opener()
    with store.writing():
        started = time.monotonic()
        with pytest.raises(StoreError, match="another process is indexing"), second.writing():
            pass
        assert time.monotonic() - started < 5  # fails fast, no waiting
        store.upsert(make_rows(range(1, 3), 0))
    with second.writing():  # released
        second.upsert(make_rows(range(3, 5), 0))
    with store.writing():
        pass
    assert len(opener()) == 4


def test_reopening_sees_everything(opener: Callable[..., LibraryStore]) -> None:
    store = bound(opener)
    rows = make_rows(range(1, 23), 0, described=True)
    with store.writing():
        store.upsert(rows[:10])
        store.upsert(rows[10:])
        store.delete([5])
    again = opener()
    assert again.meta == store.meta and again.version == store.version
    assert len(again) == 21
    got = {r["id"]: without_time(r) for r in again.rows()}
    assert got == {r.id: expected_row(r) for r in rows if r.id != 5}
    assert again.file_states() == store.file_states()


# -- backends side by side, and the Chroma-only parts -------------------------------------
def test_both_backends_return_identical_rows(tmp_path: Path, chroma_server: str) -> None:
    rows = make_rows(range(1, 20), 3, described=True)
    stores = [
        Store(tmp_path / "db", create=True),
        ChromaStore(_chroma_url(chroma_server), create=True, page_size=CHROMA_PAGE),
    ]
    for store in stores:
        store.bind_model("m@1", "m", DIM)
        store.upsert(rows)
    lance, chroma = ([without_time(r) for r in s.rows(list(range(20, 0, -1)))] for s in stores)
    assert lance == chroma
    assert stores[0].file_states() == stores[1].file_states()


def test_open_store_picks_the_backend_from_the_location(tmp_path: Path, chroma_server: str) -> None:
    assert isinstance(open_store(tmp_path / "db", create=True), Store)
    assert isinstance(open_store(str(tmp_path / "db")), Store)
    url = _chroma_url(chroma_server)
    assert open_existing(url) is None  # a reachable server without that library
    assert isinstance(open_store(url, create=True), ChromaStore)
    assert isinstance(open_existing(url), ChromaStore)
    assert is_store_url("chroma+https://db.example:8443/music")
    assert not is_store_url(str(tmp_path)) and not is_store_url(tmp_path)
    where = parse_location("chroma+https://db.example/music.v2")
    assert (where.host, where.port, where.collection, where.ssl) == (
        "db.example",
        443,
        "music.v2",
        True,
    )
    assert parse_location("chroma://[::1]:9000/lib").url == "chroma://[::1]:9000/lib"
    for bad, why in [
        ("chroma://127.0.0.1:8000/", "no collection name"),
        ("chroma://127.0.0.1:8000/a", "bad collection name"),
        ("chroma://127.0.0.1:8000/-lib", "bad collection name"),
        ("chroma://127.0.0.1:99999/lib", "bad port"),
        ("chroma://127.0.0.1:8000/a/b", "nothing more"),
    ]:
        with pytest.raises(StoreError, match=why):
            open_store(bad)
    import chromadb

    host, port = chroma_server.split(":")
    foreign = chromadb.HttpClient(host=host, port=int(port)).create_collection(
        f"foreign-{uuid.uuid4().hex[:8]}",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
    )
    with pytest.raises(StoreError, match="uses the 'cosine' space, melodex needs 'ip'"):
        open_store(f"chroma://{chroma_server}/{foreign.name}", create=True)
    down = f"chroma://127.0.0.1:{_free_port()}/music"
    with pytest.raises(StoreError, match=rf"{down}: cannot reach the Chroma server"):
        open_store(down)
    with pytest.raises(StoreError, match="cannot reach"):
        Library(down).search("anything")


def test_native_search_agrees_with_the_exact_index(chroma_server: str) -> None:
    store = ChromaStore(_chroma_url(chroma_server), create=True)
    store.bind_model("m@1", "m", DIM)
    store.upsert(make_rows(range(100, 103), 4))
    with pytest.raises(StoreError, match="--descriptors"):
        store.search(np.ones(DIM, np.float32) / np.sqrt(DIM), 3, key=parse_key_filter("minor"))
    store.delete(list(range(100, 103)))
    rows = make_rows(range(1, 61), 5, described=True)
    store.upsert(rows)
    ids = np.array([r.id for r in rows])
    exact = VectorIndex.build(np.stack([r.vector for r in rows]), ids, kind="exact")
    rng = np.random.default_rng(9)
    for _ in range(5):
        q = rng.standard_normal(DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        want_scores, want_ids = exact.search(q, k=10)
        scores, found = store.search(q, 10)
        assert found.tolist() == want_ids[0].tolist()
        np.testing.assert_allclose(scores, want_scores[0], atol=1e-5)
        subset = ids[::3]
        want_scores, want_ids = exact.search(q, k=4, allowed=subset)
        scores, found = store.search(q, 4, np.append(subset, 10_000))  # unknown ids ignored
        assert found.tolist() == want_ids[0].tolist()
        np.testing.assert_allclose(scores, want_scores[0], atol=1e-5)
        keyf = parse_key_filter("minor")
        allowed = store.filtered_ids(bpm=(100.0, 130.0), key=keyf)
        want_scores, want_ids = exact.search(q, k=5, allowed=allowed)
        scores, found = store.search(q, 5, bpm=(100.0, 130.0), key=keyf)  # on the server
        assert found.tolist() == want_ids[0].tolist() and len(found) > 0
        np.testing.assert_allclose(scores, want_scores[0], atol=1e-5)
    assert store.search(q, 3, np.array([10_000]))[1].tolist() == []


def test_readers_never_see_part_of_one_write(chroma_server: str) -> None:
    """What the kill-safety rests on: one upsert call is applied as a unit (no transactions
    exist across calls; the indexer's batches are one call each)."""
    url = _chroma_url(chroma_server)
    store = ChromaStore(url, create=True)
    store.bind_model("m@1", "m", DIM)
    batch, seen, stop = 800, set(), threading.Event()

    def read() -> None:
        reader = ChromaStore(url)
        while not stop.is_set():
            seen.add(len(reader))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(3):
            store.upsert(make_rows(range(n * batch, (n + 1) * batch), n))
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 2 and all(count % batch == 0 for count in seen), sorted(seen)


_HOLDER = """
import sys, time
from melodex.library.chroma_store import ChromaStore
store = ChromaStore(sys.argv[1], lease_seconds=float(sys.argv[2]))
with store.writing():
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_killed_writers_lease_expires(chroma_server: str) -> None:
    url = _chroma_url(chroma_server)
    store = ChromaStore(url, create=True)
    store.bind_model("m@1", "m", DIM)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with pytest.raises(StoreError, match="another process is indexing"), store.writing():
            pass
        deadline = time.monotonic() + 15
        while True:  # the lease outlives its killed holder by at most lease_seconds
            try:
                with store.writing():
                    store.upsert(make_rows([1], 0))
                break
            except StoreError:
                assert time.monotonic() < deadline, "the killed writer's lease never expired"
                time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            holder.kill()
        holder.wait()
    assert len(store) == 1


def test_a_writer_whose_lease_was_taken_over_stops(chroma_server: str) -> None:
    url = _chroma_url(chroma_server)
    stalled = ChromaStore(url, create=True, lease_seconds=1)
    stalled.bind_model("m@1", "m", DIM)
    other = ChromaStore(url, lease_seconds=1)
    with stalled.writing():
        stalled._lease.stop.set()  # stands for a writer stuck longer than its lease
        time.sleep(1.5)
        with other.writing():
            other.upsert(make_rows([1], 0))
            with pytest.raises(StoreError, match="lost the writer lease"):
                stalled.upsert(make_rows([2], 0))
    assert ChromaStore(url).ids().tolist() == [1]


# -- end to end: a Library on a Chroma server, on real audio files ------------------------
QUERIES = ("organ", "plucked guitar", "noise clicks", "a calm piano melody")


def _music(folder: Path) -> Path:
    kinds = ("plucked", "organ", "clicks")
    names = ['it\'s "one".flac', "Ünïcødé 曲.ogg", "three.mp3", "four.wav", "sub/five.flac"]
    for i, name in enumerate(names):
        tags = {"title": f"Track {i}", "artist": f"Artist {i % 2}"}
        write_audio(folder / name, tone_piece(i, 7.0, kind=kinds[i % 3]), tags=tags)
    return folder


def _same_hits(a: list, b: list) -> None:
    assert [(h.rank, h.id, h.path, h.title, h.segment_start) for h in a] == [
        (h.rank, h.id, h.path, h.title, h.segment_start) for h in b
    ]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    assert [(h.bpm, h.key, h.mode, h.duration) for h in a] == [
        (h.bpm, h.key, h.mode, h.duration) for h in b
    ]


def test_a_library_on_chroma_answers_like_the_embedded_one(
    tmp_path: Path, chroma_server: str, toy_model
) -> None:
    music = _music(tmp_path / "music")
    url = _chroma_url(chroma_server, "e2e")
    local = Library(tmp_path / "db", model=toy_model)
    remote = Library(url, model=toy_model)
    assert len(remote) == 0 and remote.store_or_none() is None
    assert len(local.index(music, descriptors=True).added) == 5
    report = remote.index(music, descriptors=True)
    assert len(report.added) == 5 and report.failed == []
    assert remote.index_kind == "chroma" and remote.path == url

    for query in QUERIES:
        _same_hits(remote.search(query, k=5), local.search(query, k=5))
    _same_hits(remote.search("organ", k=5, key="minor"), local.search("organ", k=5, key="minor"))
    _same_hits(remote.search("organ", k=5, bpm="60-200"), local.search("organ", k=5, bpm="60-200"))
    target = music / "Ünïcødé 曲.ogg"
    _same_hits(remote.similar(target, k=3), local.similar(target, k=3))
    own = remote.store.find_path(str(target))["id"]
    _same_hits(remote.similar(own, k=4), local.similar(own, k=4))
    far, near = remote.describe(target, k=4), local.describe(target, k=4)
    assert (far.tags, far.texts) == (near.tags, near.texts)
    _same_hits(far.similar, near.similar)
    assert sorted(map(tuple, remote.store.vectors()[1].tolist())) == sorted(
        map(tuple, local.store.vectors()[1].tolist())
    )

    again = Library(url, model=toy_model).index(music, descriptors=True)
    assert (again.added, again.updated, again.moved, again.skipped) == ([], [], [], 5)

    # the same changes on both sides: one file rewritten, one moved, one deleted
    write_audio(music / "three.mp3", tone_piece(99, 7.0, kind="organ"))
    (music / "four.wav").unlink()
    shutil.move(music / "sub" / "five.flac", music / "moved.flac")
    changed = remote.index(music, descriptors=True)
    assert changed.updated == [str(music / "three.mp3")]
    assert changed.moved == [str(music / "moved.flac")]
    assert changed.removed == [str(music / "four.wav")]
    local.index(music, descriptors=True)

    def contents(lib: Library) -> dict:
        rows = lib.store.rows(columns=["path", "vector", "content_hash", "bpm"])
        return {r["path"]: (r["vector"], r["content_hash"], r["bpm"]) for r in rows}

    assert contents(Library(url, model=toy_model)) == contents(local)
    _same_hits(remote.search("organ", k=4), local.search("organ", k=4))

    with remote.store.writing(), pytest.raises(StoreError, match="another process is indexing"):
        Library(url, model=toy_model).index(music)


def test_cli_and_server_take_a_chroma_url(
    tmp_path: Path, chroma_server: str, toy_model, toy_model_dir: Path
) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from melodex.cli import app
    from melodex.serve import ServeConfig, create_app

    music = _music(tmp_path / "music")
    url = _chroma_url(chroma_server, "cli")
    done = CliRunner().invoke(
        app, ["index", str(music), "--db", url, "--model", str(toy_model_dir), "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout[done.stdout.index("{") :])["db"] == url
    lib = Library(url, model=toy_model)
    want = [h.id for h in lib.search("organ", k=3)]
    found = CliRunner().invoke(app, ["search", "organ", "-k", "3", "--db", url, "--json"])
    assert [h["id"] for h in json.loads(found.stdout)] == want

    client = TestClient(create_app(ServeConfig(db=url, model=toy_model)), base_url=LOCAL)
    health = client.get("/api/health").json()
    assert (health["tracks"], health["index"]) == (5, "chroma")
    hits = client.get("/api/search", params={"q": "organ", "k": 3}).json()
    assert [h["id"] for h in hits] == want
    assert client.get(f"/api/similar/{want[0]}", params={"k": 2}).status_code == 200
    assert len(client.get("/api/map").json()["points"]) == 5
    audio = client.get(f"/api/tracks/{want[0]}/audio")
    assert audio.status_code == 200 and len(audio.content) > 1000

    missing = CliRunner().invoke(app, ["info", "--db", _chroma_url(chroma_server)])
    assert missing.exit_code == 1 and "no library here yet" in missing.output
