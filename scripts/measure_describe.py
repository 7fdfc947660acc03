"""Measure `describe --texts` on the demo corpus: each track against the texts of every track.

Every demo track (and the held-out ones, split valid/test, apart) is described against the
demo manifest's texts; a hit is one of the track's own texts. Prints, by kind of text, the share
of tracks whose own text is ranked first / in the top 5 / top 10 (R@k) and the mean reciprocal
rank, beside chance for a random ranking.

    PYTHONPATH=src .venv/bin/python -m melodex demo --tracks 48      # builds demo-data/
    PYTHONPATH=src .venv/bin/python scripts/measure_describe.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from melodex.data.manifest import read_manifest  # noqa: E402
from melodex.library.library import Library  # noqa: E402
from melodex.library.text_sets import load_text_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="demo-data/library")
    ap.add_argument("--manifest", default="demo-data/music/manifest.jsonl")
    args = ap.parse_args()
    lib = Library(args.db)
    manifest = Path(args.manifest)
    items = read_manifest(manifest, check_audio=False)
    text_set = load_text_set(manifest, model=lib.model, folder=Path(args.db))
    items_arr = np.asarray(text_set.items)
    kinds_arr = np.asarray(text_set.kinds)
    print(f"{len(items)} tracks, {len(text_set.texts)} texts; model {lib.store.meta.get('model')}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| tracks | texts | n | R@1 | R@5 | R@10 | MRR | chance R@1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    groups = {"all": items, "held out (valid+test)": [i for i in items if i["split"] != "train"]}
    for kind in ("all", "caption", "tag", "metadata"):
        mask = np.ones(len(items_arr), bool) if kind == "all" else kinds_arr == kind
        for name, chosen in groups.items():
            ranks = []
            for item in chosen:
                row = lib.store.find_path(str((manifest.parent / item["audio"]).resolve()))
                scores = text_set.vectors[mask] @ np.asarray(row["vector"], np.float32)
                own = items_arr[mask] == str(item["id"])
                order = np.argsort(-scores, kind="stable")
                ranks.append(int(np.flatnonzero(own[order])[0]) + 1)
            r = np.asarray(ranks)
            per = mask.sum() / len(items)
            cells = [f"{(r <= k).mean():.3f}" for k in (1, 5, 10)] + [f"{(1 / r).mean():.3f}"]
            print(f"| {name} | {kind} | {len(r)} | " + " | ".join(cells)
                  + f" | {per / mask.sum():.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
