"""The server's own per-request cost, without sockets or an HTTP client: the ASGI app called
directly (``app(scope, receive, send)``) by 4 concurrent asyncio tasks, as uvicorn would.

Why: ``bench_serve.py`` measures through loopback with an httpx client on the same 2 cores,
and the client's own CPU (and the machine's other load) hides what the middleware and the
thread-pool hops cost. Here a search whose text is cached costs only the app's work.

    .venv/bin/python bench/bench_asgi.py --db LIBRARY [--baseline-src /tmp/base/src]

LIBRARY: e.g. the one ``bench_serve.py --db`` builds (10k synthetic tracks). With
``--baseline-src`` the same runs go first through a process importing melodex from that
folder, so before and after share the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

PATHS = {
    "health": ["/api/health"],
    "search (repeated q)": [f"/api/search?q={quote(t)}&k=10" for t in ("calm piano", "sad rock")],
    "similar": [f"/api/similar/{i}?k=10" for i in range(1, 41)],
}


async def call(app, path: str) -> int:
    """One GET through the app; returns the status."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    status = 0

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(app, paths: list[str], concurrency: int, seconds: float) -> dict:
    lat: list[float] = []
    bad = 0
    end = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal bad
        i = w
        while time.monotonic() < end:
            t0 = time.perf_counter()
            bad += await call(app, paths[i % len(paths)]) != 200
            lat.append(time.perf_counter() - t0)
            i += concurrency

    t0, c0 = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "cpu_ms": 1000 * cpu / max(1, len(lat)),
        "p50": 1000 * lat[len(lat) // 2],
        "p99": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "errors": bad,
    }


def child(db: Path, concurrency: int, seconds: float) -> None:
    from melodex.serve import ServeConfig, create_app

    app = create_app(ServeConfig(db=db))

    async def run() -> dict:
        out = {}
        for name, paths in PATHS.items():
            await measure(app, paths, concurrency, 1.0)  # warm: caches, snapshot, encoder
            out[name] = await measure(app, paths, concurrency, seconds)
        return out

    print(json.dumps(asyncio.run(run())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.db, args.concurrency, args.seconds)
        return 0
    here = Path(__file__).resolve().parent.parent / "src"
    runs = [("before", args.baseline_src)] if args.baseline_src else []
    results = {}
    for label, src in [*runs, ("after" if runs else "this", here)]:
        env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, __file__, "--child", "--db", str(args.db)]
        cmd += ["--concurrency", str(args.concurrency), "--seconds", str(args.seconds)]
        print(f"[{label}] {src}, load {os.getloadavg()}", flush=True)
        results[label] = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                                   text=True).stdout.splitlines()[-1])  # fmt: skip
        for name, r in results[label].items():
            print(
                f"  {name:20s} {r['rps']:7.1f} req/s  {r['cpu_ms']:6.2f} ms CPU/req  "
                f"p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  errors {r['errors']}"
            )
    if args.baseline_src:
        for name in PATHS:
            b, a = results["before"][name], results["after"][name]
            print(f"{name}: {a['rps'] / b['rps']:.2f}x req/s, CPU/req {b['cpu_ms']:.2f} -> "
                  f"{a['cpu_ms']:.2f} ms")  # fmt: skip
    print(f"load at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
