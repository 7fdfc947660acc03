"""Benchmark the Chroma-backed store against the embedded path on synthetic tracks; prints figures.

Starts its own ``chroma run`` on a free loopback port (or uses ``--url``), writes N synthetic
tracks shaped like the default model's (92-d vectors, 8 window vectors, 92 tag scores,
descriptors) through :class:`ChromaStore`, then measures: write rate (indexer-sized batches of
16 and bulk batches of 1000), full reads (file_states, ids, vectors), search latency and
recall@10 of the server's HNSW against exact search, reading the hits' rows, a filtered search,
and the server's memory.

    .venv/bin/python bench/bench_chroma.py               # 20k tracks
    .venv/bin/python bench/bench_chroma.py --n 100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from synthetic import clustered_queries, clustered_vectors  # noqa: E402

from melodex.descriptors import parse_key_filter  # noqa: E402
from melodex.library.chroma_store import ChromaStore  # noqa: E402
from melodex.library.store import Store, TrackRow  # noqa: E402
from melodex.library.vector_index import VectorIndex  # noqa: E402

DIM = 92
KEYS = ("C", "D", "E", "F", "G", "A", "B")


def rows_for(vectors: np.ndarray, start: int, rng: np.random.Generator) -> list[TrackRow]:
    out = []
    for n, v in enumerate(vectors):
        i = start + n
        windows = (v + 0.1 * rng.standard_normal((8, DIM))).astype(np.float32)
        out.append(
            TrackRow(
                id=i + 1,
                path=f"/music/artist {i % 977}/album {i % 89}/track {i}.flac",
                content_hash=f"{i:032x}",
                size=5_000_000 + i,
                mtime_ns=1_700_000_000_000_000_000 + i,
                duration=180.0 + i % 120,
                title=f"Track {i}",
                artist=f"Artist {i % 977}",
                album=f"Album {i % 89}",
                genre="Test",
                vector=v,
                window_vectors=windows / np.linalg.norm(windows, axis=1, keepdims=True),
                window_starts=np.arange(8, dtype=np.float32) * 20,
                tag_scores=rng.random(DIM).astype(np.float32),
                bpm=float(60 + i % 120),
                bpm_confidence=0.8,
                key=KEYS[i % 7],
                mode=("major", "minor")[i % 2],
                key_confidence=0.6,
                loudness_lufs=-14.0,
            )
        )
    return out


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).parent / "chroma"
    cmd = [str(exe) if exe.exists() else shutil.which("chroma") or "chroma", "run"]
    cmd += ["--path", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("chroma run did not start in 60 s")


def ms(samples: list[float]) -> str:
    a = np.asarray(samples) * 1000
    return f"p50 {np.percentile(a, 50):.1f} ms, p99 {np.percentile(a, 99):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="tracks")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--url", help="an existing server's chroma://HOST:PORT (else one is started)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-chroma-"))
    proc = None
    try:
        if args.url:
            server = args.url.removeprefix("chroma://").rstrip("/")
        else:
            proc, server = start_server(tmp / "data")
        store = ChromaStore(f"chroma://{server}/bench-{uuid.uuid4().hex[:8]}", create=True)
        store.bind_model("bench@1", "bench", DIM)
        vectors = clustered_vectors(args.n, DIM, seed=0)
        rng = np.random.default_rng(0)
        print(f"{args.n} tracks x {DIM}-d on {server}; load average {os.getloadavg()[0]:.1f}")

        small = min(2000, args.n)
        started = time.perf_counter()
        with store.writing():
            for s in range(0, small, 16):
                store.upsert(rows_for(vectors[s : s + 16], s, rng))
            t_small = time.perf_counter() - started
            started = time.perf_counter()
            for s in range(small, args.n, 1000):
                store.upsert(rows_for(vectors[s : s + 1000], s, rng))
            t_bulk = time.perf_counter() - started
        print(f"write, batches of 16:   {small / t_small:,.0f} tracks/s ({small} tracks)")
        if args.n > small:
            print(f"write, batches of 1000: {(args.n - small) / t_bulk:,.0f} tracks/s")

        folder = Store(tmp / "embedded", create=True)  # the same rows in a folder
        folder.bind_model("bench@1", "bench", DIM)
        rng = np.random.default_rng(0)
        for s in range(0, args.n, 1000):
            folder.upsert(rows_for(vectors[s : s + 1000], s, rng))
        for name in ("file_states", "ids", "vectors"):
            took = []
            for backend in (store, folder):
                started = time.perf_counter()
                getattr(backend, name)()
                took.append(time.perf_counter() - started)
            print(f"{name + '()':<14} {took[0]:.2f} s (embedded: {took[1]:.2f} s)")

        queries = clustered_queries(args.queries, DIM, seed=0)
        exact = VectorIndex.build(vectors, np.arange(1, args.n + 1), kind="exact")
        lat, exact_lat, recall = [], [], []
        for q in queries:
            started = time.perf_counter()
            _, found = store.search(q, 10)
            lat.append(time.perf_counter() - started)
            started = time.perf_counter()
            _, want = exact.search(q, k=10)
            exact_lat.append(time.perf_counter() - started)
            recall.append(len(set(found.tolist()) & set(want[0].tolist())) / 10)
        print(f"search k=10 on the server: {ms(lat)}; recall@10 {np.mean(recall):.3f}")
        lat = []
        for q in queries[:50]:
            _, found = store.search(q, 10)
            started = time.perf_counter()
            store.rows(found.tolist())  # what a query reads to show its hits
            lat.append(time.perf_counter() - started)
        print(f"the 10 hits' rows:         {ms(lat)}")
        print(f"exact in-memory search:    {ms(exact_lat)}")
        minor = parse_key_filter("minor")
        lat = []
        for q in queries[:50]:
            started = time.perf_counter()
            store.search(q, 10, bpm=(100.0, 130.0), key=minor)
            lat.append(time.perf_counter() - started)
        print(f"filtered (bpm 100-130, minor) on the server: {ms(lat)}")
        if proc is not None:
            import psutil

            rss = psutil.Process(proc.pid).memory_info().rss / 2**20
            disk = sum(f.stat().st_size for f in (tmp / "data").rglob("*") if f.is_file())
            print(f"server: {rss:,.0f} MiB resident, {disk / 2**20:,.0f} MiB on disk")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
