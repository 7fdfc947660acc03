"""Does cross-modal relevance filtering (WikiMuTe) repair a noisy training set?

On the demo corpus: swap the captions of a known share of train tracks with those of tracks of a
different form and with no instrument in common (the "injected" mismatched pairs), then train the
head-only config (configs/head-only.yaml) on

  (a) clean     the untouched manifest,
  (b) noisy     the manifest with injected pairs,
  (c) filtered  noisy, filtered by the default model (melodex-base, zero-shot),
  (d) self      noisy, filtered by the model trained in (b) (self-filtering),
  (e) self@chance as (d), threshold at the model's chance level (mean cosine of random
                pairings) instead of 0: a contrastive head's cosines are all positive,
  (f) crossfit  self-filtering without memorisation: a model trained on one half of the noisy
                train split scores the other half (threshold: its chance level), both ways,

and evaluate caption->track retrieval on the untouched test split (``run_tasks(..., ["caption"])``).
The filter only touches the train split. Reports R@1/R@10/median rank with 95% bootstrap CIs,
their mean over seeds, and the filters' precision/recall at catching the injected pairs.

    .venv/bin/python scripts/filtering_experiment.py --out runs/filtering-exp
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from melodex.data.manifest import read_manifest, write_manifest  # noqa: E402
from melodex.mining.filter import filter_items, model_scorer  # noqa: E402

HEADLINE = ("R@1", "R@5", "R@10", "median_rank", "MRR")


def corpus_manifest(out: Path) -> Path:
    existing = Path("demo-data/corpus400/manifest.jsonl")
    if existing.is_file():
        return existing
    from melodex.data.demo import build_demo

    return build_demo(out / "corpus", n_tracks=300, seconds=15)


def absolute(items: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    return [{**it, "audio": str((root / it["audio"]).resolve())} for it in items]


def compatible(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ea, eb = a.get("extra", {}), b.get("extra", {})
    return ea.get("form") != eb.get("form") and not set(ea.get("instruments", [])) & set(
        eb.get("instruments", [])
    )


def inject_noise(
    items: list[dict[str, Any]], share: float, seed: int
) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """Swap all captions between pairs of compatible train tracks until ``share`` of the train
    caption pairs are mismatched. Returns the new items and the injected (id, text) pairs."""
    rng = random.Random(seed)
    train = [i for i, it in enumerate(items) if it["split"] == "train"]
    n_captions = sum(1 for i in train for t in items[i]["texts"] if t["kind"] == "caption")
    target = share * n_captions
    order = train[:]
    rng.shuffle(order)
    out = [json.loads(json.dumps(it)) for it in items]
    used: set[int] = set()
    injected: set[tuple[str, str]] = set()
    for a in order:
        if len(injected) >= target:
            break
        if a in used:
            continue
        partner = next((b for b in order if b != a and b not in used
                        and compatible(items[a], items[b])), None)  # fmt: skip
        if partner is None:
            continue
        used |= {a, partner}
        caps_a = [t for t in items[a]["texts"] if t["kind"] == "caption"]
        caps_b = [t for t in items[partner]["texts"] if t["kind"] == "caption"]
        for idx, theirs in ((a, caps_b), (partner, caps_a)):
            rest = [t for t in items[idx]["texts"] if t["kind"] != "caption"]
            out[idx]["texts"] = [dict(t) for t in theirs] + rest
            injected |= {(items[idx]["id"], t["text"]) for t in theirs}
    return out, injected


def train_and_eval(manifest: Path, name: str, out: Path, seed: int, epochs: int) -> dict:
    from melodex.evaluate.tasks import run_tasks
    from melodex.lab.config import load_config
    from melodex.lab.train import train
    from melodex.models import load_model

    cfg = load_config(
        "configs/head-only.yaml",
        [f"data.manifest={json.dumps(str(manifest))}", f"name={json.dumps(name)}",
         f"output_dir={json.dumps(str(out / 'runs'))}", f"optim.epochs={epochs}",
         f"seed={seed}"],
    )  # fmt: skip
    done = cfg.run_dir / "model" / "config.json"
    if (cfg.run_dir / "metrics.json").is_file() and done.is_file():  # finished earlier: reuse
        result = SimpleNamespace(model_dir=done.parent)
    else:
        result = train(cfg, resume=False)
    model = load_model(result.model_dir)
    run = run_tasks({name: model}, out / "clean.jsonl", split="test", tasks=["caption"],
                    cache_dir=out / "eval-cache", seed=0)  # fmt: skip
    metrics = run.models[0].results["caption"].metrics
    return {"model_dir": str(result.model_dir), "test": {k: float(v) for k, v in metrics.items()}}


def chance_level(items: list[dict[str, Any]], model: Any, out: Path) -> float:
    """Mean cosine of the model over every (train track, train caption) pairing: what a random
    caption scores. A threshold for models whose cosines are all positive (contrastive heads)."""
    from melodex.evaluate.embed import embed_items

    train = [it for it in items if it["split"] == "train"]
    emb = embed_items(model, train, root="/", cache_dir=out / "eval-cache")
    texts = sorted({t["text"] for it in train for t in it["texts"] if t["kind"] == "caption"})
    return float((emb.vectors @ model.encode_text(texts, normalize=True).T).mean())


def filter_train(
    items: list[dict[str, Any]],
    model: Any,
    injected: set[tuple[str, str]],
    out: Path,
    threshold: float = 0.0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Filter the train split only; valid/test pass through. Returns items and filter stats."""
    train = [it for it in items if it["split"] == "train"]
    rest = [it for it in items if it["split"] != "train"]
    scorer = model_scorer(model, root="/", cache_dir=out / "eval-cache")
    result = filter_items(train, scorer, threshold=threshold, kinds=("caption",),
                          scorer_name=getattr(model, "identity", "model"))  # fmt: skip
    pairs = [p for p in result.pairs if not np.isnan(p.score)]
    is_bad = np.array([(p.item_id, p.text) in injected for p in pairs])
    dropped = np.array([not p.kept for p in pairs])
    scores = np.array([p.score for p in pairs])
    tp = int((is_bad & dropped).sum())
    stats = {
        "threshold": threshold,
        **result.counts,
        "injected_pairs": int(is_bad.sum()),
        "precision": tp / max(int(dropped.sum()), 1),
        "recall": tp / max(int(is_bad.sum()), 1),
        "dropped_share": float(dropped.mean()),
        "mean_score_clean": float(scores[~is_bad].mean()),
        "mean_score_injected": float(scores[is_bad].mean()),
        # threshold-free: how well the score separates clean (positive) from injected pairs
        "auc_clean_vs_injected": auc(scores, ~is_bad),
        "examples_dropped": [
            (p.item_id, p.text, round(p.score, 3)) for p in result.examples(3)["dropped"]
        ],  # fmt: skip
    }
    return result.kept + rest, stats


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties 1/2 (Mann-Whitney)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


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
    ap.add_argument("--out", type=Path, default=Path("runs/filtering-exp"))
    ap.add_argument("--share", type=float, default=0.3, help="share of train caption pairs swapped")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per condition")
    ap.add_argument("--filtered-seeds", type=int, default=None,
                    help="training seeds of (c) and (d) (default: --seeds)")  # fmt: skip
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args(argv)
    from melodex.models import load_model

    t0 = time.time()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    src = corpus_manifest(out)
    clean = absolute(read_manifest(src), src.parent)
    write_manifest(out / "clean.jsonl", clean)
    noisy, injected = inject_noise(clean, args.share, seed=0)
    write_manifest(out / "noisy.jsonl", noisy)
    n_train_caps = sum(1 for it in clean if it["split"] == "train"
                       for t in it["texts"] if t["kind"] == "caption")  # fmt: skip
    report: dict[str, Any] = {
        "manifest": str(src), "share": args.share, "injected_pairs": len(injected),
        "train_caption_pairs": n_train_caps, "conditions": {}, "filters": {},
    }  # fmt: skip
    print(f"injected {len(injected)} of {n_train_caps} train caption pairs", flush=True)

    def run(name: str, manifest: Path, seeds: int | None = None) -> list[dict]:
        runs = [train_and_eval(manifest, f"{name}-s{s}", out, s, args.epochs)
                for s in range(seeds or args.seeds)]  # fmt: skip
        report["conditions"][name] = runs
        print(fmt_row(name, runs), flush=True)
        return runs

    run("a-clean", out / "clean.jsonl")
    noisy_runs = run("b-noisy", out / "noisy.jsonl")
    kept, stats = filter_train(noisy, load_model(), injected, out)
    report["filters"]["default"] = stats
    print("default-model filter:", json.dumps({k: v for k, v in stats.items()
                                               if k != "examples_dropped"}), flush=True)  # fmt: skip
    write_manifest(out / "filtered-default.jsonl", kept)
    run("c-filtered-default", out / "filtered-default.jsonl", args.filtered_seeds)
    self_model = load_model(noisy_runs[0]["model_dir"])
    kept, stats = filter_train(noisy, self_model, injected, out)
    report["filters"]["self"] = stats
    print("self filter:", json.dumps({k: v for k, v in stats.items()
                                      if k != "examples_dropped"}), flush=True)  # fmt: skip
    write_manifest(out / "filtered-self.jsonl", kept)
    run("d-filtered-self", out / "filtered-self.jsonl", args.filtered_seeds)
    # (e) self-filtering with the threshold at the model's chance level instead of 0
    report["chance_level"] = {"default": chance_level(noisy, load_model(), out),
                              "self": chance_level(noisy, self_model, out)}  # fmt: skip
    kept, stats = filter_train(noisy, self_model, injected, out, report["chance_level"]["self"])
    report["filters"]["self-chance"] = stats
    print("self filter at chance level:", json.dumps({k: v for k, v in stats.items()
                                                      if k != "examples_dropped"}), flush=True)  # fmt: skip
    write_manifest(out / "filtered-self-chance.jsonl", kept)
    run("e-filtered-self-chance", out / "filtered-self-chance.jsonl", args.filtered_seeds)
    # (f) cross-fitted self-filtering: a model trained on one half of the noisy train split
    # scores the other half (it never saw those pairs), threshold at its chance level
    train_ids = [it["id"] for it in noisy if it["split"] == "train"]
    fold_of = {i: k % 2 for k, i in enumerate(sorted(train_ids))}
    kept_all: list[dict[str, Any]] = []
    fold_stats = []
    for fold in (0, 1):
        held = [it for it in noisy if it["split"] == "train" and fold_of[it["id"]] == fold]
        rest = [it for it in noisy if it["split"] != "train" or fold_of[it["id"]] != fold]
        write_manifest(out / f"fold{fold}.jsonl", rest)
        fold_run = train_and_eval(out / f"fold{fold}.jsonl", f"fold{fold}-s0", out, 0, args.epochs)
        fold_model = load_model(fold_run["model_dir"])
        level = chance_level(held, fold_model, out)
        kept, stats = filter_train(held, fold_model, injected, out, level)
        fold_stats.append(stats)
        kept_all += kept
    kept_all += [it for it in noisy if it["split"] != "train"]
    tp = sum(s["precision"] * s["dropped_pairs"] for s in fold_stats)
    dropped_n = sum(s["dropped_pairs"] for s in fold_stats)
    report["filters"]["self-crossfit"] = {
        "folds": fold_stats, "dropped_pairs": dropped_n,
        "precision": tp / max(dropped_n, 1),
        "recall": tp / max(sum(s["injected_pairs"] for s in fold_stats), 1),
        "auc_clean_vs_injected": [s["auc_clean_vs_injected"] for s in fold_stats],
    }  # fmt: skip
    print("cross-fitted self filter:", json.dumps({k: v for k, v in
          report["filters"]["self-crossfit"].items() if k != "folds"}), flush=True)  # fmt: skip
    write_manifest(out / "filtered-self-crossfit.jsonl", kept_all)
    run("f-filtered-self-crossfit", out / "filtered-self-crossfit.jsonl", args.filtered_seeds)
    report["seconds"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n| condition | R@1 | R@10 | median rank | MRR |\n|---|---|---|---|---|")
    for name, runs in report["conditions"].items():
        print(fmt_row(name, runs))
    print(f"\nreport: {out / 'report.json'}  ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
