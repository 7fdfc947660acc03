"""Load test of ``melodex serve`` on loopback: searches at fixed concurrency for a fixed time.

A library of N synthetic tracks is written straight into a store (clustered unit vectors bound
to the default model's identity, so no audio is needed for 10k tracks); the real server runs in
a subprocess (``python -m melodex serve``) on a free port; a closed loop of C asyncio workers
sends distinct text queries (each one a real text-encoder pass: the encoder's query cache is
not hit unless the run outlasts the distinct queries, which is reported) and prints throughput
and latency percentiles. Client and server share this machine's cores.

    .venv/bin/python bench/bench_serve.py --tracks 10000 --concurrency 4 --seconds 20
    .venv/bin/python bench/bench_serve.py --tracks 10000 --burst 30   # + old/new gate at 48

``--baseline-src DIR`` runs the same load against a server importing melodex from DIR first
(e.g. ``git archive HEAD~3 src | tar -x -C /tmp/base``, then ``--baseline-src /tmp/base/src``),
so before and after are measured in one run, under the same machine load. "search (repeated
q)" asks 40 popular texts once each, then over and over: every measured request is a
query-cache hit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from bench_search import EXTRAS, GENRES, MOODS  # noqa: E402
from synthetic import clustered_vectors  # noqa: E402

from melodex.library.store import Store, TrackRow  # noqa: E402

TARGET_P99_MS = 50.0
TARGET_RPS = 150.0  # at concurrency 4, 10k tracks, 2 cores (issue 17)


def fill_store(db: Path, n: int, *, seed: int = 0) -> None:
    """Write n synthetic tracks bound to the default model (skipped if db already holds n)."""
    from melodex.models import load_model

    model = load_model()
    store = Store(db, create=True)
    if len(store) == n and store.meta.get("model") == model.identity:
        return
    if len(store):
        raise SystemExit(f"{db} already holds {len(store)} tracks; use another --db")
    store.bind_model(model.identity, model.config.name, model.dim)
    vectors = clustered_vectors(n, model.dim, n_clusters=max(8, n // 100), seed=seed)
    rng = np.random.default_rng(seed)
    tags = rng.dirichlet(np.ones(len(model.tag_names)), size=n).astype(np.float32)
    with store.writing():
        for start in range(0, n, 2000):
            rows = [
                TrackRow(
                    id=i + 1,
                    path=f"/synthetic/{i:06d}.flac",
                    content_hash=f"{i:016x}",
                    size=1000,
                    mtime_ns=0,
                    duration=180.0,
                    title=f"Synthetic {i}",
                    artist=f"Artist {i % 500}",
                    album=None,
                    genre=None,
                    vector=vectors[i],
                    window_vectors=vectors[i][None, :],
                    window_starts=np.zeros(1, np.float32),
                    tag_scores=tags[i],
                )
                for i in range(start, min(n, start + 2000))
            ]
            store.upsert(rows)
        store.compact()


def queries() -> list[str]:
    """Distinct short queries, shuffled (seeded)."""
    out = [f"{m} {g} {e}" for m in MOODS for g in GENRES for e in EXTRAS]
    out += [f"{m} {g}" for m in MOODS for g in GENRES]
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.permutation(len(out))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE_WITH_QUEUE = """
import sys, uvicorn
from melodex.serve import ServeConfig, create_app
config = ServeConfig(db=sys.argv[1], query_queue=int(sys.argv[3]))
uvicorn.run(create_app(config), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def start_server(
    db: Path, port: int, *, queue: int | None = None, src: Path | None = None
) -> subprocess.Popen:
    """``melodex serve``; with ``queue``, the same app with that many queued queries (0: the
    gate before the queue, which answered 503 at once past 32 running); with ``src``, the
    melodex found there (a baseline)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, "-m", "melodex", "serve", "--db", str(db), "--port", str(port)]
    if queue is not None:
        cmd = [sys.executable, "-c", SERVE_WITH_QUEUE, str(db), str(port), str(queue)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120.0) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.stderr.read().decode()}")
            try:
                r = await client.get("/api/health")
                if r.status_code == 200:
                    return r.json()
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("server did not start in time")


async def load(
    base: str, paths: list[str], *, concurrency: int, seconds: float
) -> tuple[list[float], dict[int | str, int], float]:
    """Closed loop: each worker sends the next request as soon as its last one is answered."""
    import httpx

    latencies: list[float] = []
    statuses: dict[int | str, int] = {}
    cursor = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        t_end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal cursor
            while time.monotonic() < t_end:
                path = paths[cursor % len(paths)]
                cursor += 1
                t0 = time.perf_counter()
                code: int | str
                try:
                    code = (await client.get(path)).status_code
                except httpx.TransportError as exc:  # a timeout, a dropped connection: errors
                    code = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                statuses[code] = statuses.get(code, 0) + 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.monotonic() - t0
    return latencies, statuses, wall


async def ask_each(base: str, paths: list[str]) -> None:
    """Each path once, in turn (the texts a repeated-query run then finds cached)."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for path in paths:
            (await client.get(path)).raise_for_status()


def report(name: str, latencies: list[float], statuses: dict[int | str, int], wall: float) -> float:
    ms = np.asarray(latencies) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    print(
        f"{name:<22} {len(ms):>6} req  {len(ms) / wall:7.1f} req/s  p50 {p50:6.1f} ms  "
        f"p90 {p90:6.1f} ms  p99 {p99:6.1f} ms  max {ms.max():6.1f} ms  statuses {statuses}"
    )
    return float(p99)


def in_process_floor(db: Path, texts: list[str], seconds: float) -> None:
    """The same searches without HTTP, one at a time: what the server cannot go below."""
    from melodex.library.library import Library

    lib = Library(db)
    for t in texts[-20:]:
        lib.search(t, k=10)  # warm-up (texts the timed runs do not use)
    lat = []
    t_end = time.monotonic() + seconds
    t0 = time.monotonic()
    for t in texts:
        if time.monotonic() > t_end:
            break
        s0 = time.perf_counter()
        lib.search(t, k=10)
        lat.append(time.perf_counter() - s0)
    report("in-process search", lat, {}, time.monotonic() - t0)


async def serve_runs(
    args: argparse.Namespace, db: Path, label: str, src: Path | None
) -> dict[str, float]:
    """One server (this melodex, or the one in ``src``): distinct and repeated searches,
    similar and health, each a closed loop at ``--concurrency``. Returns req/s and p99s."""
    from urllib.parse import quote

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(db, port, src=src)
    out: dict[str, float] = {}
    try:
        health = await wait_ready(base, proc)
        print(
            f"[{label}] server: {health['tracks']} tracks, {health['index']} index, "
            f"model {health['model']['identity']}; client concurrency {args.concurrency}, "
            f"{args.seconds:g} s per run, load {os.getloadavg()}"
        )
        texts = queries()
        search = [f"/api/search?q={quote(t)}&k=10" for t in texts]
        # warm-up on texts the measured run does not use (the encoder caches 1024 queries)
        await load(base, search[-200:], concurrency=args.concurrency, seconds=args.warmup)
        measured = search[:-240]  # never seen before: a text-encoder pass each
        lat, st, wall = await load(
            base, measured, concurrency=args.concurrency, seconds=args.seconds
        )
        out["distinct_rps"], out["distinct_p99"] = (
            len(lat) / wall,
            report(f"{label}: search (distinct q)", lat, st, wall),
        )
        if len(lat) > len(measured):
            print(f"  note: {len(lat)} requests > {len(measured)} distinct queries (cache hits)")
        popular = search[-240:-200]  # each asked once first: then every request is a cache hit
        await ask_each(base, popular)
        lat, st, wall = await load(
            base, popular, concurrency=args.concurrency, seconds=args.seconds
        )
        out["repeated_rps"], out["repeated_p99"] = (
            len(lat) / wall,
            report(f"{label}: search (repeated q)", lat, st, wall),
        )
        ids = [str(i) for i in range(1, health["tracks"] + 1)]
        rng = np.random.default_rng(1)
        similar = [f"/api/similar/{ids[i]}?k=10" for i in rng.integers(0, len(ids), 5000)]
        lat2, st2, wall2 = await load(
            base, similar, concurrency=args.concurrency, seconds=args.seconds / 2
        )
        report(f"{label}: similar", lat2, st2, wall2)
        lat3, st3, wall3 = await load(
            base, ["/api/health"], concurrency=args.concurrency, seconds=args.seconds / 4
        )
        report(f"{label}: health", lat3, st3, wall3)
    finally:
        stop(proc)
    return out


async def run(args: argparse.Namespace, db: Path) -> int:
    from urllib.parse import quote

    print(f"{os.cpu_count()} cores shared by client and server; load at start {os.getloadavg()}")
    texts = queries()
    if args.floor:
        in_process_floor(db, texts[1000:-200], args.seconds / 4)
    before = None
    if args.baseline_src is not None:
        before = await serve_runs(args, db, "before", args.baseline_src)
    after = await serve_runs(args, db, "after" if before else "this", None)
    for what in ("distinct", "repeated"):
        rps, p99 = after[f"{what}_rps"], after[f"{what}_p99"]
        ratio = f" ({rps / before[f'{what}_rps']:.1f}x before)" if before else ""
        verdict = "meets" if rps >= TARGET_RPS and p99 <= TARGET_P99_MS else "misses"
        print(
            f"search ({what} q) {rps:.1f} req/s{ratio}, p99 {p99:.1f} ms: {verdict} the "
            f">= {TARGET_RPS:g}/s, p99 <= {TARGET_P99_MS:g} ms target"
        )
    print(f"load at end {os.getloadavg()}")
    if args.burst:
        await bursts(args, db, [f"/api/search?q={quote(t)}&k=10" for t in texts])
    return 0


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def bursts(args: argparse.Namespace, db: Path, search: list[str]) -> None:
    """48 concurrent clients for ``--burst`` seconds: the old gate (no queue) against the new."""
    print(f"burst: concurrency {args.burst_concurrency}, {args.burst:g} s, load {os.getloadavg()}")
    for label, queue in (("old gate (no queue)", 0), ("new gate (queue 64)", 64)):
        port = free_port()
        proc = start_server(db, port, queue=queue)
        try:
            await wait_ready(f"http://127.0.0.1:{port}", proc)
            await load(f"http://127.0.0.1:{port}", search[-50:], concurrency=1, seconds=1.0)
            lat, st, wall = await load(
                f"http://127.0.0.1:{port}",
                search,
                concurrency=args.burst_concurrency,
                seconds=args.burst,
            )
            report(label, lat, st, wall)
            errors = sum(n for code, n in st.items() if code != 200)
            print(f"  errors: {errors} of {len(lat)} ({100 * errors / max(1, len(lat)):.1f}%)")
        finally:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--no-floor", dest="floor", action="store_false", help="Skip the in-process reference."
    )
    parser.add_argument("--db", type=Path, help="Library folder to (re)use; default: a temp dir.")
    parser.add_argument(
        "--burst", type=float, default=0.0, help="Seconds of the old/new gate burst (0: none)."
    )
    parser.add_argument("--burst-concurrency", type=int, default=48)
    parser.add_argument(
        "--baseline-src", type=Path, help="A melodex src/ folder to measure first (before)."
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="melodex-bench-serve-") as tmp:
        db = args.db or Path(tmp) / "library"
        t0 = time.perf_counter()
        fill_store(db, args.tracks)
        print(
            f"store: {args.tracks} synthetic tracks ready in {time.perf_counter() - t0:.1f} s ({db})"
        )
        return asyncio.run(run(args, db))


if __name__ == "__main__":
    sys.exit(main())
