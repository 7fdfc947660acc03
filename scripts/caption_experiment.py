"""Do template pseudo-captions (TTMR++ style, from tags) help caption->track retrieval?

On the demo corpus, trains the head-only config (configs/head-only.yaml) with

  (a) captions          the corpus captions only (data.sentence_kinds=[caption]),
  (b) + pseudo          plus template pseudo-captions on the train split
                        (kind "pseudo-caption", sentence_kinds=[caption, pseudo-caption]),
  (c) + tag-concat      plus the tags joined by commas in the same slot (the baseline that
                        carries the same facts without a grammar),

evaluates on the test split's captions (``run_tasks(..., tasks=["caption"])``) and measures the
diversity (distinct-1/2/3) of template pseudo-captions, tag concatenations and the corpus's own
captions.

    .venv/bin/python scripts/caption_experiment.py --out runs/caption-exp
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from melodex.data.manifest import read_manifest, write_manifest  # noqa: E402
from melodex.enrich import pseudo_captions  # noqa: E402
from melodex.enrich.captions import distinct_n, ngram_counts, tag_concatenation  # noqa: E402
from melodex.enrich.metadata import add_texts  # noqa: E402


def corpus_manifest(out: Path) -> Path:
    existing = Path("demo-data/corpus400/manifest.jsonl")
    if existing.is_file():
        return existing
    from melodex.data.demo import build_demo

    return build_demo(out / "corpus", n_tracks=300, seconds=15)


def diversity(texts: list[str]) -> dict[str, float]:
    return (
        {f"distinct-{n}": round(distinct_n(texts, n), 4) for n in (1, 2, 3)}
        | {f"unique-{n}-grams": len(ngram_counts(texts, n)) for n in (1, 2, 3)}
        | {
            "texts": len(texts),
            "unique_texts": len(set(texts)),
            "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
        }
    )


def train_and_eval(
    manifest: Path, name: str, kinds: list[str], out: Path, seed: int, epochs: int
) -> dict:
    from melodex.evaluate.tasks import run_tasks
    from melodex.lab.config import load_config
    from melodex.lab.train import train
    from melodex.models import load_model

    cfg = load_config(
        "configs/head-only.yaml",
        [f"data.manifest={json.dumps(str(manifest))}", f"name={json.dumps(name)}",
         f"output_dir={json.dumps(str(out / 'runs'))}", f"optim.epochs={epochs}",
         f"seed={seed}", f"data.sentence_kinds={json.dumps(kinds)}"],
    )  # fmt: skip
    done = cfg.run_dir / "model" / "config.json"
    if (cfg.run_dir / "metrics.json").is_file() and done.is_file():  # finished earlier: reuse
        result = SimpleNamespace(model_dir=done.parent)
    else:
        result = train(cfg, resume=False)
    run = run_tasks({name: load_model(result.model_dir)}, out / "captions.jsonl", split="test",
                    tasks=["caption"], cache_dir=out / "eval-cache", seed=0)  # fmt: skip
    metrics = run.models[0].results["caption"].metrics
    return {"model_dir": str(result.model_dir), "test": {k: float(v) for k, v in metrics.items()}}


def artist_queries(model_dirs: dict[str, list[str]], items: list[dict], out: Path) -> dict:
    """'a song by X' / 'music like X' over the valid+test tracks: mean AP and P@5 per model.

    Relevant for "a song by X": the tracks by X. For "music like X": the tracks by X or by one of
    X's three nearest artists in the tag graph of the train split. Placeholder artists ask no query.
    """
    from melodex.enrich.metadata import artist_graph_from_tags, is_placeholder, neighbours
    from melodex.evaluate.embed import embed_items
    from melodex.evaluate.metrics import average_precision_at_k
    from melodex.models import load_model

    gallery = [it for it in items if it["split"] in ("valid", "test")]
    graph = artist_graph_from_tags([it for it in items if it["split"] == "train"], k=3)
    artists = sorted({it["artist"] for it in gallery if not is_placeholder(it.get("artist"))})
    by = np.array([it.get("artist", "") for it in gallery])
    queries, rel = [], []
    for a in artists:
        queries.append(f"a song by {a}")
        rel.append(by == a)
        near = {a, *neighbours(graph, a, k=3)}
        queries.append(f"music like {a}")
        rel.append(np.isin(by, sorted(near)))
    relevance = np.array(rel)
    result: dict[str, Any] = {"queries": queries, "gallery": len(gallery),
                              "random_AP": float(relevance.mean(axis=1).mean())}  # fmt: skip
    for name, dirs in model_dirs.items():
        ap, p5 = [], []
        for d in dirs:
            model = load_model(d)
            emb = embed_items(model, gallery, root="/", cache_dir=out / "eval-cache")
            scores = model.encode_text(queries, normalize=True) @ emb.vectors.T
            ap.append(float(np.nanmean(average_precision_at_k(scores, relevance))))
            top = np.argsort(-scores, axis=1)[:, :5]
            p5.append(float(np.take_along_axis(relevance, top, axis=1).mean()))
        result[name] = {"mAP": ap, "P@5": p5}
        print(f"{name}: mAP {np.mean(ap):.3f} P@5 {np.mean(p5):.3f}", flush=True)
    return result


def fmt_row(name: str, runs: list[dict]) -> str:
    first = runs[0]["test"]
    cells = []
    for k in ("R@1", "R@10", "median_rank", "MRR"):
        vals = [r["test"][k] for r in runs]
        ci = f"[{first[k + '_ci_low']:.2f}, {first[k + '_ci_high']:.2f}]"
        spread = f" ± {np.std(vals):.3f}" if len(vals) > 1 else ""
        cells.append(f"{np.mean(vals):.3f}{spread} (s0 {first[k]:.3f} {ci})")
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/caption-exp"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n-captions", type=int, default=2, help="pseudo-captions per train track")
    ap.add_argument(
        "--metadata-check",
        action="store_true",
        help="only: train with metadata/similar-artist texts and test artist queries",
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    src = corpus_manifest(out)
    items = [
        {**it, "audio": str((src.parent / it["audio"]).resolve())} for it in read_manifest(src)
    ]
    write_manifest(out / "captions.jsonl", items)
    if args.metadata_check:
        from melodex.enrich import enrich_items

        meta = enrich_items(items, captions=False, metadata=True, splits=["train"])
        write_manifest(out / "metadata.jsonl", meta)
        dirs: dict[str, list[str]] = {"a-captions": [], "d-plus-metadata": []}
        for s in range(args.seeds):
            for name, manifest, kinds in (
                ("a-captions", out / "captions.jsonl", ["caption"]),
                ("d-plus-metadata", out / "metadata.jsonl", ["caption", "metadata"]),
            ):
                run = train_and_eval(manifest, f"{name}-s{s}", kinds, out, s, args.epochs)
                dirs[name].append(run["model_dir"])
        result = artist_queries(dirs, items, out)
        (out / "metadata-report.json").write_text(json.dumps(result, indent=2) + "\n")
        return 0
    pseudo: list[dict[str, Any]] = []
    concat: list[dict[str, Any]] = []
    for it in items:
        if it["split"] != "train":
            pseudo.append(it)
            concat.append(it)
            continue
        pseudo.append(add_texts(it, "pseudo-caption", pseudo_captions(it, n=args.n_captions)))
        # not add_texts: it would skip the text as a duplicate of the item's "tag" text
        extra_text = {"kind": "pseudo-caption", "text": tag_concatenation(it["tags"])}
        concat.append({**it, "texts": [*it["texts"], extra_text]})
    write_manifest(out / "pseudo.jsonl", pseudo)
    write_manifest(out / "tagconcat.jsonl", concat)
    every = [pseudo_captions(it, n=1)[0] for it in items]
    report: dict[str, Any] = {
        "manifest": str(src),
        "diversity": {
            "template pseudo-captions (1 per track)": diversity(every),
            "tag concatenation": diversity([tag_concatenation(it["tags"]) for it in items]),
            "corpus captions (human-style templates of the demo)": diversity(
                [t["text"] for it in items for t in it["texts"] if t["kind"] == "caption"]
            ),
        },
        "examples": every[:3],
        "conditions": {},
    }
    print(json.dumps(report["diversity"], indent=2), flush=True)
    plan = [
        ("a-captions", out / "captions.jsonl", ["caption"]),
        ("b-plus-pseudo", out / "pseudo.jsonl", ["caption", "pseudo-caption"]),
        ("c-plus-tagconcat", out / "tagconcat.jsonl", ["caption", "pseudo-caption"]),
    ]
    for name, manifest, kinds in plan:
        runs = [train_and_eval(manifest, f"{name}-s{s}", kinds, out, s, args.epochs)
                for s in range(args.seeds)]  # fmt: skip
        report["conditions"][name] = runs
        print(fmt_row(name, runs), flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n| condition | R@1 | R@10 | median rank | MRR |\n|---|---|---|---|---|")
    for name, runs in report["conditions"].items():
        print(fmt_row(name, runs))
    print(f"\nreport: {out / 'report.json'}  ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
