"""A million tracks: build a real melodex library of N synthetic tracks, then measure it.

The library (cached under bench/.data/million-N/, resumable) is a real LanceDB store bound to
the default model, written with Store.upsert: clustered 92-d track vectors (bench/synthetic.py),
8 window vectors per track, tag scores, paths in a genre/artist/album tree, tags, and tempo/key
descriptors for 80 % of tracks (bench/million_data.py). Then:

* index: the ANN index built by the library's own path (search_index.sync_index), its build time
  and its size on disk;
* recall@10 of that saved index against exact search, for perturbed cluster queries and real
  text-query embeddings of the default model, at the production ef and others;
* serve (a fresh process): load time, memory (peak RSS) and text-query latency end to end
  through ``Library(db).search(text, k=10)`` for distinct queries with the query cache off;
* add (a fresh process, on a copy of the library): Store.upsert of new tracks in the indexer's
  commits and in one batch, compaction, and sync_index's incremental HNSW update and save.

Every figure is printed on its own line with the load average, and written to --json.

    .venv/bin/python bench/bench_million.py --json million.json       # 1M: data + index ~15 min once
    .venv/bin/python bench/bench_million.py --tracks 20000 --hnsw-threshold 10000  # ~1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from bench_search import text_queries  # noqa: E402
from million_data import RowMaker  # noqa: E402

from melodex.library import search_index  # noqa: E402
from melodex.library.library import HIT_COLUMNS  # noqa: E402
from melodex.library.search_index import INDEX_DIR, sync_index  # noqa: E402
from melodex.library.store import Store  # noqa: E402
from melodex.library.vector_index import VectorIndex  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data"
INFO_FILE = "bench-million.json"
TARGET_RSS_MB = 2048
FIELDS = ("vectors", "seed", "windows", "n_clusters", "spread")


# -- reporting -------------------------------------------------------------------------------
class Report:
    """Prints one figure a line (with the 1-min load average) and keeps them for --json."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def __call__(self, key: str, value: Any, unit: str = "", label: str = "") -> None:
        load = os.getloadavg()[0]
        self.figures[key] = value
        self.figures.setdefault("load_average", {})[key] = round(load, 2)
        shown = (
            f"{value:,.3f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        print(f"  {label or key}: {shown} {unit}   [load {load:.2f}]", flush=True)

    def merge(self, figures: dict[str, Any]) -> None:
        loads = figures.pop("load_average", {})
        for key, value in figures.items():
            self.figures[key] = value
            if key in loads:
                self.figures.setdefault("load_average", {})[key] = loads[key]


def rss_mb() -> float:
    """Current resident set size of this process."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far: VmHWM, not ru_maxrss, which a child
    process inherits from its parent (it would report the parent's peak if that was higher)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB or bytes


def ms_percentiles(samples: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(samples, dtype=np.float64) * 1e3
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def set_threshold(threshold: int | None, dim: int) -> None:
    """Make the library switch to HNSW above ``threshold`` tracks (tests use tiny libraries)."""
    if threshold is not None:
        search_index.EXACT_MAX_ELEMENTS = threshold * dim


def maker_for(args: argparse.Namespace, dim: int, n_tags: int) -> RowMaker:
    return RowMaker(
        dim=dim,
        n_tags=n_tags,
        n_clusters=args.n_clusters,
        kind=args.vectors,
        spread=args.spread,
        windows=args.windows,
        seed=args.seed,
    )


def read_info(db: Path) -> dict[str, Any]:
    path = db / INFO_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_info(db: Path, info: dict[str, Any]) -> None:
    tmp = db / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, db / INFO_FILE)


# -- phase 1: the library ---------------------------------------------------------------------
def build_library(args: argparse.Namespace, model: Any, report: Report) -> Store:
    """Write rows [present, tracks) with Store.upsert in batches; resumes after a kill."""
    db: Path = args.db
    store = Store(db, create=True)
    store.bind_model(model.identity, model.config.name, model.dim)
    info = read_info(db)
    config = {name: getattr(args, name) for name in FIELDS}
    if info and info.get("config") != config:
        raise SystemExit(f"{db} was made with {info.get('config')}, not {config}; use another --db")
    info["config"] = config
    info["n_tags"] = len(model.tag_names)
    present = len(store)
    if present > args.tracks:
        raise SystemExit(f"{db} holds {present:,} tracks, more than --tracks {args.tracks:,}")
    maker = maker_for(args, model.dim, len(model.tag_names))
    if present:  # batches commit atomically and in order: rows [0, present) are there
        last = maker.arrays(present - 1, present)["id"][0]
        if not store.rows([int(last)], columns=["id"]):
            raise SystemExit(f"{db}: row {present - 1} is missing; delete the folder to rebuild")
    print(f"library {db}: {present:,} of {args.tracks:,} tracks present", flush=True)
    if present < args.tracks:
        t_start = time.perf_counter()
        gen_s = write_s = 0.0
        with store.writing():
            for start in range(present, args.tracks, args.batch):
                stop = min(args.tracks, start + args.batch)
                t0 = time.perf_counter()
                rows = maker.track_rows(start, stop)
                t1 = time.perf_counter()
                store.upsert(rows)
                t2 = time.perf_counter()
                gen_s += t1 - t0
                write_s += t2 - t1
                done = stop - present
                elapsed = time.perf_counter() - t_start
                print(
                    f"  {stop:,} tracks; upsert of {stop - start:,} took {t2 - t1:.2f} s "
                    f"({done / elapsed:,.0f} tracks/s overall, load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
            t0 = time.perf_counter()
            store.compact()
            compact_s = time.perf_counter() - t0
        total = time.perf_counter() - t_start
        runs = info.setdefault("data_runs", [])
        runs.append(
            {
                "tracks_written": args.tracks - present,
                "seconds": round(total, 1),
                "generate_seconds": round(gen_s, 1),
                "upsert_seconds": round(write_s, 3),
                "compact_seconds": round(compact_s, 1),
                "batch": args.batch,
            }
        )
        write_info(db, info)
    for run in info.get("data_runs", []):
        print(f"  data run: {run}")
    upsert_s = sum(r["upsert_seconds"] for r in info.get("data_runs", []))
    written = sum(r["tracks_written"] for r in info.get("data_runs", []))
    report("tracks", len(store), "tracks", "tracks in the library")
    if written and upsert_s > 0:
        report(
            "data_upsert_tracks_per_s",
            round(written / max(upsert_s, 1e-9)),
            "tracks/s",
            f"Store.upsert throughput when the library was built (batches of {args.batch:,})",
        )
    report("store_disk_mb", round(folder_mb(db / "tracks.lance"), 1), "MB", "LanceDB table on disk")
    return store


def prune_old_versions(store: Store, db: Path, report: Report) -> None:
    """The table as a library holds it from its next index run on: ``Store.compact`` deletes
    versions older than ``VERSION_GRACE`` (5 min), which is what the build's own compaction
    left behind by now. Done here at once (nothing else reads this library)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # LanceDB warns that readers of old versions would fail
        warnings.simplefilter("ignore", UserWarning)
        store.compact(keep_versions=timedelta(0))
    report("prune_s", round(time.perf_counter() - t0, 2), "s", "compact + drop old versions")
    report(
        "store_disk_pruned_mb",
        round(folder_mb(db / "tracks.lance"), 1),
        "MB",
        "LanceDB table on disk, old versions dropped (target <= 3072)",
    )


# -- phase 2: the ANN index -------------------------------------------------------------------
def build_index(args: argparse.Namespace, store: Store, report: Report) -> VectorIndex:
    db: Path = args.db
    info = read_info(db)
    folder = db / INDEX_DIR
    index, _ = search_index._load(folder, store.dim)
    fresh = (
        index is not None
        and len(index) == len(store)
        and not args.rebuild_index
        and "index_build_seconds" in info
    )
    if not fresh:
        shutil.rmtree(folder, ignore_errors=True)
        print("building the search index (search_index.sync_index) ...", flush=True)
        t0 = time.perf_counter()
        index = sync_index(store)
        info["index_build_seconds"] = round(time.perf_counter() - t0, 1)
        info["index_build_peak_rss_mb"] = round(peak_rss_mb())
        info["index_build_load"] = round(os.getloadavg()[0], 2)
        write_info(db, info)
    assert index is not None
    cached = "" if not fresh else " (cached build)"
    report("index_kind", index.kind, "", "index kind")
    if index.kind == "hnsw":
        report("hnsw_m", index.params["m"], "", "HNSW M")
        report("hnsw_ef_construction", index.params["ef_construction"], "", "HNSW ef_construction")
    report(
        "index_build_s",
        info["index_build_seconds"],
        "s",
        f"index build through sync_index{cached}, load then {info['index_build_load']}",
    )
    report("index_disk_mb", round(folder_mb(folder), 1), "MB", "saved index on disk")
    return index


# -- phase 3: recall --------------------------------------------------------------------------
def exact_top10(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((len(queries), 10), np.int64)
    for start in range(0, len(queries), 64):
        scores = queries[start : start + 64] @ vectors.T
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        out[start : start + 64] = ids[top]
    return out


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def measure_recall(
    args: argparse.Namespace, store: Store, model: Any, report: Report, kind: str
) -> None:
    if kind != "hnsw":
        report("recall_note", f"{kind} index: recall 1 by construction", "", "recall@10")
        return
    index = VectorIndex.load(args.db / INDEX_DIR, expected_dim=store.dim)  # as saved
    ids, vectors = store.vectors()
    n_vec = args.queries // 2
    cluster_q = maker_for(args, store.dim, len(model.tag_names)).queries(n_vec)
    texts = text_queries(args.queries - n_vec, args.seed + 1)
    text_q = np.asarray(model.encode_text(texts), np.float32)
    t0 = time.perf_counter()
    truth = {
        "cluster": exact_top10(vectors, ids, cluster_q),
        "text": exact_top10(vectors, ids, text_q),
    }
    exact_ms = (time.perf_counter() - t0) / (len(cluster_q) + len(text_q)) * 1e3
    report("exact_batched_ms_per_query", round(exact_ms, 2), "ms", "exact search, batched")
    del vectors
    queries = {"cluster": cluster_q, "text": text_q}
    print(
        f"recall@10 against exact, {len(cluster_q)} perturbed cluster queries + "
        f"{len(text_q)} text-query embeddings:",
        flush=True,
    )
    for ef in sorted(set(args.ef) | {search_index.EF_SEARCH}):
        index.ef_search = ef
        parts = {}
        for name, q in queries.items():
            _, found = index.search(q, k=10)
            parts[name] = recall_at_10(found, truth[name])
        both = (parts["cluster"] * len(cluster_q) + parts["text"] * len(text_q)) / (
            len(cluster_q) + len(text_q)
        )
        single = []
        for q in cluster_q[:200]:
            t0 = time.perf_counter()
            index.search(q, k=10)
            single.append(time.perf_counter() - t0)
        p50, _ = ms_percentiles(single)
        prod = " (production)" if ef == search_index.EF_SEARCH else ""
        report(
            f"recall10_ef{ef}",
            {k: round(v, 4) for k, v in {"all": both, **parts}.items()},
            "",
            f"recall@10 at ef {ef}{prod} (all / cluster / text)",
        )
        report(f"hnsw_query_p50_ms_ef{ef}", round(p50, 3), "ms", f"HNSW 1-query p50 at ef {ef}")


# -- phase 4: serving, in a fresh process -----------------------------------------------------
def serve_phase(args: argparse.Namespace) -> dict[str, Any]:
    """Run in a fresh process: open the library, answer distinct text queries, report."""
    import melodex

    report = Report()
    rss_start = rss_mb()
    t0 = time.perf_counter()
    lib = melodex.Library(args.db)
    model = lib.model
    report("serve_model_load_s", round(time.perf_counter() - t0, 2), "s", "model load")
    text_encoder = getattr(model, "text_encoder", None)
    if text_encoder is not None:
        text_encoder.cache_size = 0  # every query pays the encoder
    set_threshold(args.hnsw_threshold, model.dim)
    rss_model = rss_mb()
    t0 = time.perf_counter()
    kind = lib.index_kind  # opens the store, loads the saved index, syncs it
    report("serve_index_load_s", round(time.perf_counter() - t0, 2), "s", f"{kind} index load")
    rss_index = rss_mb()
    texts = text_queries(args.text_queries + 10, args.seed + 2)
    for text in texts[:10]:  # warm-up
        lib.search(text, k=10)
    latencies = []
    n_hits = []
    for text in texts[10:]:
        t0 = time.perf_counter()
        hits = lib.search(text, k=10)
        latencies.append(time.perf_counter() - t0)
        n_hits.append(len(hits))
    p50, p99 = ms_percentiles(latencies)
    report(
        "text_query_p50_ms",
        round(p50, 2),
        "ms",
        f"text query end to end, p50 ({len(latencies)} distinct queries, cache off)",
    )
    report("text_query_p99_ms", round(p99, 2), "ms", "text query end to end, p99")
    if min(n_hits) < 10:
        report(
            "short_results", int(sum(h < 10 for h in n_hits)), "queries", "queries with < 10 hits"
        )
    peak = peak_rss_mb()
    report("serve_peak_rss_mb", round(peak), "MB", f"peak RSS to serve (target <= {TARGET_RSS_MB})")
    report(
        "serve_rss_breakdown_mb",
        {
            "start": round(rss_start),
            "model": round(rss_model - rss_start),
            "index_and_store": round(rss_index - rss_model),
            "after_queries": round(rss_mb()),
        },
        "MB",
        "RSS: at start / +model / +index and store / after queries",
    )

    # Where a query's time goes (the same queries again, each part on its own).
    index = lib._vector_index()
    store = lib.store
    enc, ann, fetch = [], [], []
    for text in texts[10 : 10 + min(100, args.text_queries)]:
        t0 = time.perf_counter()
        q = model.encode_text(text)
        t1 = time.perf_counter()
        _, found = index.search(np.asarray(q, np.float32), k=10)
        t2 = time.perf_counter()
        store.rows([int(i) for i in found[0]], columns=HIT_COLUMNS)
        t3 = time.perf_counter()
        enc.append(t1 - t0)
        ann.append(t2 - t1)
        fetch.append(t3 - t2)
    report(
        "query_parts_p50_ms",
        {
            "encode": round(ms_percentiles(enc)[0], 2),
            "index_search": round(ms_percentiles(ann)[0], 3),
            "row_fetch": round(ms_percentiles(fetch)[0], 2),
        },
        "ms",
        "p50 of encode / index search / fetch of the 10 hits' rows",
    )
    rng = np.random.default_rng(args.seed)
    paths = [r["path"] for r in store.rows(index.ids[rng.choice(len(index), 20)], columns=["path"])]
    took = []
    for path in paths:
        t0 = time.perf_counter()
        assert store.find_path(path) is not None
        took.append(time.perf_counter() - t0)
    report("find_path_p50_ms", round(ms_percentiles(took)[0], 2), "ms", "store.find_path p50")
    took = []
    for text in texts[10:30]:
        t0 = time.perf_counter()
        lib.search(text, k=10, bpm="100-130", key="minor")
        took.append(time.perf_counter() - t0)
    report(
        "filtered_query_p50_ms",
        round(ms_percentiles(took)[0], 1),
        "ms",
        "text query with --bpm 100-130 --key minor, p50",
    )
    report("serve_peak_rss_after_filters_mb", round(peak_rss_mb()), "MB", "peak RSS after filters")
    return report.figures


# -- phase 5: adding tracks, in a fresh process on a copy -------------------------------------
def add_phase(args: argparse.Namespace) -> dict[str, Any]:
    report = Report()
    store = Store(args.db)
    assert store.dim is not None
    set_threshold(args.hnsw_threshold, store.dim)
    maker = maker_for(args, store.dim, read_info(args.db)["n_tags"])
    base = len(store)
    index = sync_index(store)  # the saved index, loaded as a fresh process would
    assert index is not None and len(index) == base, (len(index), base)
    n = args.add
    small = maker.track_rows(base, base + n)
    big = maker.track_rows(base + n, base + 2 * n)
    t0 = time.perf_counter()
    store.file_states()
    report(
        "file_states_s",
        round(time.perf_counter() - t0, 2),
        "s",
        "store.file_states() (every index run reads it first)",
    )

    # A serving process syncs its index on the first query after each indexer commit.
    c = args.commit_every
    with store.writing():
        store.upsert(small[:c])
    t0 = time.perf_counter()
    reloaded = sync_index(store)  # what Library did before: load the saved index again
    report(
        "sync_one_commit_reload_s",
        round(time.perf_counter() - t0, 2),
        "s",
        f"sync after one commit of {c}, loading the saved index again (the old Library path)",
    )
    del reloaded
    with store.writing():
        store.upsert(small[c : 2 * c])
    t0 = time.perf_counter()
    index = sync_index(store, current=index)
    report(
        "sync_one_commit_first_s",
        round(time.perf_counter() - t0, 2),
        "s",
        f"sync after one commit of {c}, updating the index in memory (Library now; the first "
        "add after a load grows the graph's capacity)",
    )
    with store.writing():
        store.upsert(small[2 * c : 3 * c])
    t0 = time.perf_counter()
    index = sync_index(store, current=index)
    report(
        "sync_one_commit_s",
        round(time.perf_counter() - t0, 2),
        "s",
        f"sync after the next commit of {c} (what a query pays after each indexer commit)",
    )

    with store.writing():
        t0 = time.perf_counter()
        for start in range(3 * c, n, c):
            store.upsert(small[start : start + c])
        report(
            "add_upsert_commits_s",
            round((time.perf_counter() - t0) * n / (n - 3 * c), 2),
            "s",
            f"Store.upsert of {n:,} new tracks in commits of {c} (indexer), scaled from "
            f"{n - 3 * c:,}",
        )
        t0 = time.perf_counter()
        store.compact()
        report("add_compact_s", round(time.perf_counter() - t0, 2), "s", "store.compact() after")
    t0 = time.perf_counter()
    index = sync_index(store, current=index)
    report(
        "add_sync_index_s",
        round(time.perf_counter() - t0, 2),
        "s",
        f"sync_index: incremental {index.kind} update of {n - 3 * c:,} tracks + save",
    )
    assert len(index) == base + n
    parts = {}
    for name, read in (
        ("ids", store.ids),
        ("newest_indexed_at", store.newest_indexed_at),
        ("vectors_since", lambda: store.vectors(since=time.time())),
    ):
        t0 = time.perf_counter()
        read()
        parts[name] = round(time.perf_counter() - t0, 3)
    all_ids = store.ids()
    t0 = time.perf_counter()
    np.setdiff1d(index.ids, all_ids, assume_unique=True)
    parts["setdiff"] = round(time.perf_counter() - t0, 3)
    scratch = args.db / "scratch-index"
    t0 = time.perf_counter()
    index.save(scratch)
    parts["index_save"] = round(time.perf_counter() - t0, 2)
    shutil.rmtree(scratch, ignore_errors=True)
    report("sync_parts_s", parts, "s", "of which: store reads and the index save")

    with store.writing():
        t0 = time.perf_counter()
        store.upsert(big)
        report(
            "add_upsert_one_batch_s",
            round(time.perf_counter() - t0, 2),
            "s",
            f"Store.upsert of {n:,} new tracks in one batch",
        )
        t0 = time.perf_counter()
        store.compact()
        report("add_compact2_s", round(time.perf_counter() - t0, 2), "s", "store.compact() after")
    t0 = time.perf_counter()
    index = sync_index(store, current=index)
    report(
        "add_sync_index2_s",
        round(time.perf_counter() - t0, 2),
        "s",
        f"sync_index after the one-batch upsert ({n:,} tracks)",
    )
    assert len(index) == base + 2 * n

    gone = [r.id for r in small + big]
    with store.writing():
        t0 = time.perf_counter()
        store.delete(gone)
        store.compact()
        report("remove_s", round(time.perf_counter() - t0, 2), "s", f"delete {2 * n:,} + compact")
    t0 = time.perf_counter()
    index = sync_index(store, current=index)
    report("remove_sync_index_s", round(time.perf_counter() - t0, 2), "s", "sync_index after it")
    assert len(index) == base
    report("add_peak_rss_mb", round(peak_rss_mb()), "MB", "peak RSS of the adding process")
    return report.figures


def run_phase(phase: str, args: argparse.Namespace, db: Path, report: Report) -> None:
    """Run a phase in a fresh Python process and merge its figures."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--db", str(db)]
    for name in ("tracks", "text_queries", "add", "commit_every", "seed", "windows", "spread"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    cmd += ["--n-clusters", str(args.n_clusters), "--vectors", args.vectors]
    if args.hnsw_threshold is not None:
        cmd += ["--hnsw-threshold", str(args.hnsw_threshold)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    if result.returncode != 0 or not lines:
        raise SystemExit(f"phase {phase} failed (exit {result.returncode})")
    report.merge(json.loads(lines[-1]))


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="default: bench/.data/million-KIND-N")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per upsert when building")
    parser.add_argument(
        "--vectors",
        choices=["tags", "sphere"],
        default="tags",
        help="tags: shaped like the default model's tag space; sphere: bench/synthetic.py",
    )
    parser.add_argument("--windows", type=int, default=8, help="window vectors per track")
    parser.add_argument("--n-clusters", type=int, default=0, help="default: tracks / 100")
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queries", type=int, default=1000, help="recall queries (half text)")
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128, 512])
    parser.add_argument("--text-queries", type=int, default=300, help="timed distinct queries")
    parser.add_argument("--add", type=int, default=10_000, help="tracks added to the library")
    parser.add_argument("--commit-every", type=int, default=16, help="the indexer's commit size")
    parser.add_argument(
        "--hnsw-threshold", type=int, default=None, help="tracks above which HNSW is used"
    )
    parser.add_argument("--rebuild-index", action="store_true", help="rebuild the saved index")
    parser.add_argument("--skip", nargs="*", default=[], choices=["recall", "serve", "add"])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--phase", choices=["serve", "add"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.n_clusters = args.n_clusters or max(20, args.tracks // 100)
    if args.db is None:
        args.db = DATA / f"million-{args.vectors}-{args.tracks}"
    return args


def main(argv: Sequence[str] | None = None, *, model: Any = None) -> dict[str, Any]:
    """Run the benchmark; ``model``: the default model, already loaded (tests pass theirs)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse(argv)
    if args.phase:  # a fresh child process: print its figures as JSON on the last line
        figures = serve_phase(args) if args.phase == "serve" else add_phase(args)
        print(json.dumps(figures), flush=True)
        return figures

    from melodex.models import load_model

    saved_threshold = search_index.EXACT_MAX_ELEMENTS
    report = Report()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()}", flush=True)
    try:
        model = model or load_model()
        set_threshold(args.hnsw_threshold, model.dim)
        report("model", model.identity, "", "model")
        report("dim", model.dim, "", "vector dimensions")
        store = build_library(args, model, report)
        kind = build_index(args, store, report).kind
        prune_old_versions(store, args.db, report)
        if "recall" not in args.skip:
            measure_recall(args, store, model, report, kind)
        del store, model
        if "serve" not in args.skip:
            print("serving, in a fresh process:", flush=True)
            run_phase("serve", args, args.db, report)
        if "add" not in args.skip:
            copy = args.db.with_name(args.db.name + "-add-copy")
            shutil.rmtree(copy, ignore_errors=True)
            t0 = time.perf_counter()
            shutil.copytree(args.db, copy)
            print(
                f"adding tracks, in a fresh process, on a copy ({time.perf_counter() - t0:.0f} s)"
            )
            try:
                run_phase("add", args, copy, report)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
    finally:
        search_index.EXACT_MAX_ELEMENTS = saved_threshold
    print(f"load average at end: {os.getloadavg()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report.figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return report.figures


if __name__ == "__main__":
    main()
    raise SystemExit(0)
