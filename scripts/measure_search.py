"""Measure hybrid search on the demo library: fused vs vector-only vs text-only, and negation.

The queries are made from the demo manifest (nothing is typed in by hand): each artist's
surname alone and as "songs by X"; each album's name; "X <form> with <instrument>" for each
artist and instrument of theirs; and "<instrument>" alone (a description that names no
metadata). A track is relevant when the manifest says it is by that artist / on that album /
played with that instrument. Negation: "<A> no <B>" for pairs of instruments, counting how many of
the top 10 really have B, for several penalty weights.

    PYTHONPATH=src .venv/bin/python -m melodex demo --tracks 48      # builds demo-data/
    PYTHONPATH=src .venv/bin/python scripts/measure_search.py [--db demo-data/library]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from melodex.library.library import Library  # noqa: E402

MODES = ("hybrid", "vector", "text")


def load_truth(manifest: Path) -> list[dict]:
    items = []
    for line in manifest.read_text("utf-8").splitlines():
        item = json.loads(line)
        item["path"] = str((manifest.parent / item["audio"]).resolve())
        items.append(item)
    return items


def make_queries(items: list[dict]) -> dict[str, list[tuple[str, set[str]]]]:
    """Query groups -> [(query, relevant paths)]."""
    by_artist, by_album, by_instrument = defaultdict(set), defaultdict(set), defaultdict(set)
    forms: dict[tuple[str, str], set[str]] = defaultdict(set)
    for it in items:
        by_artist[it["artist"]].add(it["path"])
        by_album[it["album"]].add(it["path"])
        for inst in it["extra"]["instruments"]:
            by_instrument[inst].add(it["path"])
            forms[(it["artist"], it["extra"]["form"], inst)].add(it["path"])
    named = {a: p for a, p in by_artist.items() if len(p) >= 2 and a not in ("Traditional",)}
    groups = {
        "name": [(a.split()[-1], p) for a, p in sorted(named.items())],
        "songs by name": [(f"songs by {a.split()[-1]}", p) for a, p in sorted(named.items())],
        "album": sorted(by_album.items()),
        "name + form + instrument": [
            (f"{a.split()[-1]} {form} with {inst}", p)
            for (a, form, inst), p in sorted(forms.items())
            if a in named
        ],
        "instrument only": [(inst, p) for inst, p in sorted(by_instrument.items()) if len(p) >= 3],
    }
    return groups


def scores(ranked: list[str], relevant: set[str]) -> tuple[float, float]:
    """(R-precision, reciprocal rank of the first relevant)."""
    r = len(relevant)
    rprec = len(set(ranked[:r]) & relevant) / r
    rr = next((1 / (i + 1) for i, p in enumerate(ranked) if p in relevant), 0.0)
    return rprec, rr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="demo-data/library")
    ap.add_argument("--manifest", default="demo-data/music/manifest.jsonl")
    args = ap.parse_args()
    items = load_truth(Path(args.manifest))
    lib = Library(args.db)
    n = len(lib)
    print(f"demo library: {n} tracks, model {lib.store.meta.get('model')}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| queries | n | " + " | ".join(f"{m} R-prec | {m} MRR" for m in MODES) + " |")
    print("|---|---:|" + "---:|---:|" * len(MODES))
    for group, queries in make_queries(items).items():
        cells = []
        for mode in MODES:
            got = [
                scores([h.path for h in lib.search(q, k=n, mode=mode)], rel) for q, rel in queries
            ]
            rp, mrr = np.mean(got, axis=0) if got else (0.0, 0.0)
            cells += [f"{rp:.3f}", f"{mrr:.3f}"]
        print(f"| {group} | {len(queries)} | " + " | ".join(cells) + " |")

    first = {q: p for q, p in make_queries(items)["name"]}
    if "Palestrina" in first:
        top = lib.search("Palestrina", k=len(first["Palestrina"]))
        share = sum(h.path in first["Palestrina"] for h in top) / len(top)
        print(f"\n'Palestrina' (hybrid): {share:.0%} of the top {len(top)} are Palestrina's")

    by_instrument = defaultdict(set)
    for it in items:
        for inst in it["extra"]["instruments"]:
            by_instrument[inst].add(it["path"])
    common = [i for i, p in sorted(by_instrument.items()) if len(p) >= 5]
    pairs = [(a, b) for a in common for b in common if a != b]
    print(f"\nnegation: '<A> no <B>' over {len(pairs)} pairs of {', '.join(common)}; top 10,")
    print("mean share of hits with A / with B (manifest instruments), by penalty weight lambda\n")
    print("| lambda | with A | with B |")
    print("|---:|---:|---:|")
    for weight in (0.0, 0.25, 0.5, 1.0):
        share_a, share_b = [], []
        for a, b in pairs:
            hits = lib.search(f"{a} no {b}", k=10, mode="vector", exclude_weight=weight)
            share_a.append(np.mean([h.path in by_instrument[a] for h in hits]))
            share_b.append(np.mean([h.path in by_instrument[b] for h in hits]))
        print(f"| {weight:g} | {np.mean(share_a):.3f} | {np.mean(share_b):.3f} |")


if __name__ == "__main__":
    main()
