"""Compare zero-shot variants of the default model (melodex-base) on the demo corpus.

Builds (or reuses) the demo corpus under bench/.data/compare, runs the two musicnn taggers once
per window of every track (cached there too), then evaluates each variant's heads on the cached
confidences: caption -> track retrieval, tag-query retrieval and a few unseen descriptions, with
a random baseline and bootstrap 95% CIs. Tables are printed as Markdown (docs/default-model.md).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/compare_zero_shot.py

The tag prior used for centring is the mean tag confidence over the TRAIN split's tracks; all
retrieval figures are on the test+valid split unless a table says otherwise.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from melodex.audio import frame_windows, load_audio, select_windows  # noqa: E402
from melodex.data.demo import build_demo  # noqa: E402
from melodex.data.manifest import read_manifest  # noqa: E402
from melodex.encoders.musicnn import MUSICNN_SR, WINDOW_SAMPLES  # noqa: E402
from melodex.encoders.text import TextEncoder  # noqa: E402
from melodex.models.zero_shot import (  # noqa: E402
    TaggerBank,
    ZeroShotTagModel,
    build_zero_shot_model,
    merged_vocabulary,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "compare"
TAGGERS = ("MTT_musicnn", "MSD_musicnn")
PROMPTS = ("{tag}", "{tag} music", "a {tag} song", "music with {tag}",
           "This is a recording of {tag} music.")  # fmt: skip
CURRENT = {"space": "text", "prompt": "{tag}", "audio_power": 1.0, "center_audio": False}
# Content descriptions no caption uses, each with the tag rule that defines its positives.
DESCRIPTIONS: list[tuple[str, list[str]]] = [
    ("a choir singing sacred music", ["choir"]),
    ("lively dance tunes played on the fiddle", ["fiddle", "fast"]),
    ("calm, slow music for a string section", ["strings", "slow"]),
    ("a folk melody on the flute", ["flute", "folk"]),
    ("music for a quiet evening with a solo piano", ["piano", "solo"]),
    ("a church organ playing a hymn", ["organ", "chorale"]),
    ("an upbeat accordion tune", ["accordion", "fast"]),
    ("a slow duet", ["duet", "slow"]),
]


# ----------------------------------------------------------------------------- data


def corpus(n_tracks: int, seconds: float, seed: int) -> tuple[Path, list[dict[str, Any]]]:
    """Build the demo corpus once (re-runs keep finished tracks) and read its manifest."""
    folder = DATA / f"demo-{n_tracks}x{seconds:g}-s{seed}"

    def progress(done: int, total: int, _note: str) -> None:
        if done == total or done % 25 == 0:
            print(f"  corpus {folder.name}: {done}/{total}", flush=True)

    manifest = build_demo(folder, n_tracks=n_tracks, seconds=seconds, seed=seed,
                          formats=("flac",), progress=progress)  # fmt: skip
    return folder, read_manifest(manifest)


def window_confidences(
    bank: TaggerBank, folder: Path, items: Sequence[dict[str, Any]]
) -> dict[str, np.ndarray]:
    """Every window's raw tagger outputs per track, (W, total tags), cached beside the corpus."""
    cache = folder / "window-confidences.npz"
    stored = dict(np.load(cache)) if cache.is_file() else {}
    out, fresh = {}, 0
    start = time.perf_counter()
    for item in items:
        key = item["id"]
        if key not in stored:
            y = load_audio(folder / item["audio"], sr=MUSICNN_SR)
            stored[key] = bank.tag_windows(frame_windows(y, window=WINDOW_SAMPLES))
            fresh += 1
            if fresh % 50 == 0:
                print(f"  tagged {fresh} tracks ({time.perf_counter() - start:.0f} s)", flush=True)
        out[key] = stored[key]
    if fresh:
        np.savez(cache, **stored)
        print(f"  tagged {fresh} tracks in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def track_vectors(
    model: ZeroShotTagModel,
    raw: Sequence[np.ndarray],
    merge: np.ndarray,
    *,
    max_windows: int | None,
) -> np.ndarray:
    """(N, dim) pooled vectors, exactly as ``embed_waveform`` forms them, from cached outputs."""
    vecs = []
    for windows in raw:
        chosen = select_windows(len(windows), max_windows=max_windows)
        outputs = model.tag_scores_to_vectors(windows[chosen] @ merge.T)
        vecs.append(outputs.mean(axis=0))
    return unit_rows(np.stack(vecs))


def unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def tag_prior(raw: Sequence[np.ndarray], merge: np.ndarray) -> np.ndarray:
    """Mean merged tag confidence over tracks (each track the mean of all its windows)."""
    return np.mean([(w @ merge.T).mean(axis=0) for w in raw], axis=0).astype(np.float32)


# ----------------------------------------------------------------------------- metrics


def caption_ranks(queries: np.ndarray, gallery: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1-based rank of each query's own track (ties counted against it)."""
    sims = queries @ gallery.T
    own = sims[np.arange(len(target)), target]
    return (sims >= own[:, None]).sum(axis=1)


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def roc_auc(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mann-Whitney AUC, ties counted half."""
    pos, neg = scores[relevant], scores[~relevant]
    return float(
        ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / pos.size / neg.size
    )


def bootstrap_ci(values: np.ndarray, *, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% CI of the mean, resampling queries."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


@dataclass
class Scores:
    ranks: np.ndarray  # caption queries: rank of own track
    tag_ap: np.ndarray  # tag queries: AP
    tag_auc: np.ndarray
    known: np.ndarray  # tag queries whose word is one of the taggers' tags
    desc_ap: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def row(self) -> dict[str, float]:
        r = self.ranks
        return {
            "R@1": float((r <= 1).mean()),
            "R@5": float((r <= 5).mean()),
            "R@10": float((r <= 10).mean()),
            "medR": float(np.median(r)),
            "mAP@10": float(np.where(r <= 10, 1.0 / r, 0.0).mean()),
            "tag mAP": float(self.tag_ap.mean()),
            "tag AUC": float(self.tag_auc.mean()),
            "known mAP": float(self.tag_ap[self.known].mean()) if self.known.any() else np.nan,
        }


@dataclass
class Queries:
    """Caption and tag queries over one gallery of tracks."""

    captions: list[str]
    target: np.ndarray  # gallery index of each caption's track
    tags: list[str]
    tag_relevant: np.ndarray  # (n_tags, n_gallery) bool

    @classmethod
    def from_items(cls, items: Sequence[dict[str, Any]], *, min_positives: int) -> Queries:
        captions, target = [], []
        for i, item in enumerate(items):
            for text in item["texts"]:
                if text["kind"] == "caption":
                    captions.append(text["text"])
                    target.append(i)
        vocab = sorted({t for item in items for t in item["tags"]})
        rel = np.array([[t in item["tags"] for item in items] for t in vocab])
        keep = (rel.sum(axis=1) >= min_positives) & (rel.sum(axis=1) < len(items))
        return cls(
            captions,
            np.array(target),
            [t for t, k in zip(vocab, keep, strict=True) if k],
            rel[keep],
        )


def evaluate(encode_text, gallery: np.ndarray, q: Queries, known_tags: set[str]) -> Scores:
    ranks = caption_ranks(encode_text(q.captions), gallery, q.target)
    tag_sims = encode_text(q.tags) @ gallery.T
    ap = np.array([average_precision(s, r) for s, r in zip(tag_sims, q.tag_relevant, strict=True)])
    auc = np.array([roc_auc(s, r) for s, r in zip(tag_sims, q.tag_relevant, strict=True)])
    known = np.array([t in known_tags for t in q.tags])
    return Scores(ranks, ap, auc, known)


def random_scores(n_gallery: int, q: Queries, known_tags: set[str], *, dim: int, seed: int):
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    gallery = unit(n_gallery)
    return evaluate(lambda texts: unit(len(texts)), gallery, q, known_tags)


# ----------------------------------------------------------------------------- variants


def variants(prior: np.ndarray) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for prompt in PROMPTS:
        for center in (False, True):
            for power in (1.0, 2.0, 4.0):
                out.append({"space": "text", "prompt": prompt, "audio_power": power,
                            "center_audio": center})  # fmt: skip
            for temp in (None, 0.1, 0.03):
                out.append({"space": "tag", "prompt": prompt, "query_temperature": temp,
                            "center_audio": center})  # fmt: skip
    for v in out:
        if v["center_audio"]:
            v["tag_prior"] = prior
    return out


def label(v: dict[str, Any]) -> str:
    centre = " centred" if v.get("center_audio") else ""
    if v["space"] == "text":
        return f'text p={v.get("audio_power", 1.0):g}{centre} "{v["prompt"]}"'
    t = v.get("query_temperature")
    return f'tag T={t if t else "-"}{centre} "{v["prompt"]}"'


def fmt_row(name: str, row: dict[str, float], extra: str = "") -> str:
    cells = [f"{row['R@1']:.3f}", f"{row['R@5']:.3f}", f"{row['R@10']:.3f}",
             f"{row['medR']:.1f}", f"{row['mAP@10']:.3f}", f"{row['tag mAP']:.3f}",
             f"{row['tag AUC']:.3f}", f"{row['known mAP']:.3f}"]  # fmt: skip
    return f"| {name} | " + " | ".join(cells) + f" |{extra}"


HEADER = ("| variant | R@1 | R@5 | R@10 | medR | mAP@10 | tag mAP | tag AUC | known-tag mAP |",
          "|---|---|---|---|---|---|---|---|---|")  # fmt: skip


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=300, help="demo tracks (default 300)")
    parser.add_argument("--seconds", type=float, default=20.0, help="track length (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-tracks", type=int, default=12,
                        help="long tracks for the window-sampling check (0 to skip)")  # fmt: skip
    parser.add_argument("--long-seconds", type=float, default=120.0)
    parser.add_argument("--min-positives", type=int, default=3)
    parser.add_argument("--random-seeds", type=int, default=20)
    args = parser.parse_args(argv)

    print("## Setup", flush=True)
    folder, items = corpus(args.tracks, args.seconds, args.seed)
    bank = TaggerBank(TAGGERS)
    tags, merge = merged_vocabulary(bank.taggers)
    known_tags = {t.lower() for t in tags}
    raw = window_confidences(bank, folder, items)

    train = [it for it in items if it["split"] == "train"]
    held = [it for it in items if it["split"] in ("test", "valid")]
    prior = tag_prior([raw[it["id"]] for it in train], merge)
    n_windows = [len(raw[it["id"]]) for it in items]
    print(f"corpus: {len(items)} tracks x {args.seconds:g} s ({folder.relative_to(ROOT)}), "
          f"train {len(train)}, test+valid {len(held)}; windows per track "
          f"{min(n_windows)}-{max(n_windows)}; prior from {len(train)} train tracks")  # fmt: skip

    encoder = TextEncoder("all-MiniLM-L6-v2", cache_size=8192)
    splits = {"test+valid": held, "train": train}
    qs = {
        name: Queries.from_items(s, min_positives=args.min_positives) for name, s in splits.items()
    }
    for name, q in qs.items():
        n_known = sum(t in known_tags for t in q.tags)
        print(f"{name}: {len(splits[name])} tracks, {len(q.captions)} captions, "
              f"{len(q.tags)} tag queries with >= {args.min_positives} positives "
              f"({n_known} of them also tagger tags: "
              f"{', '.join(t for t in q.tags if t in known_tags)})")  # fmt: skip

    # Sanity: the cached path gives the same vector as the model's own file embedding.
    check = build_zero_shot_model(text_encoder=encoder, **CURRENT)
    direct = check.embed_file(folder / held[0]["audio"]).vector
    cached = track_vectors(check, [raw[held[0]["id"]]], merge, max_windows=8)[0]
    print(f"check: cached vs embed_file cosine {float(direct @ cached):.6f}")

    results: dict[str, dict[str, Scores]] = {}
    configs: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    for v in variants(prior):
        model = build_zero_shot_model(text_encoder=encoder, max_windows=8, **v)
        name = label(v)
        configs[name] = v
        results[name] = {}
        for split, subset in splits.items():
            gallery = track_vectors(model, [raw[it["id"]] for it in subset], merge, max_windows=8)
            results[name][split] = evaluate(model.encode_text, gallery, qs[split], known_tags)
        del model
    print(f"evaluated {len(results)} variants in {time.perf_counter() - start:.0f} s")

    rand = {
        split: [
            random_scores(len(subset), qs[split], known_tags, dim=384, seed=s)
            for s in range(args.random_seeds)
        ]  # fmt: skip
        for split, subset in splits.items()
    }

    def rand_row(split: str) -> dict[str, float]:
        rows = [r.row() for r in rand[split]]
        return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}

    # ---- tables
    held_rows = {n: r["test+valid"].row() for n, r in results.items()}
    order = sorted(held_rows, key=lambda n: (-held_rows[n]["tag mAP"], -held_rows[n]["R@10"]))
    best_map = order[0]
    best_r10 = max(held_rows, key=lambda n: (held_rows[n]["R@10"], held_rows[n]["tag mAP"]))
    current = label(CURRENT)
    train_rows = {n: r["train"].row() for n, r in results.items()}
    train_rank = {n: i + 1 for i, n in enumerate(
        sorted(train_rows, key=lambda n: -train_rows[n]["tag mAP"]))}  # fmt: skip

    print(
        f"\n## All variants, test+valid ({len(held)} tracks), sorted by tag mAP; "
        "last column: rank by tag mAP on the train split\n"
    )
    print(HEADER[0][:-1] + "| train rank |")
    print(HEADER[1] + "---|")
    for n in order:
        print(fmt_row(n, held_rows[n], f" {train_rank[n]} |"))
    print(fmt_row("random vectors (mean of seeds)", rand_row("test+valid"), " |"))

    print(
        f"\n## Train split ({len(train)} tracks; the prior comes from these same tracks), "
        "top 10 by tag mAP\n"
    )
    print("\n".join(HEADER))
    for n in sorted(train_rows, key=lambda n: -train_rows[n]["tag mAP"])[:10]:
        print(fmt_row(n, train_rows[n]))
    if current not in sorted(train_rows, key=lambda n: -train_rows[n]["tag mAP"])[:10]:
        print(fmt_row(f"{current} (current default)", train_rows[current]))
    print(fmt_row("random vectors (mean of seeds)", rand_row("train")))

    print("\n## Bootstrap 95% CIs over queries (test+valid)\n")
    print(
        "| variant | caption R@10 [95% CI] | tag mAP [95% CI] | paired diff vs current, tag mAP |"
    )
    print("|---|---|---|---|")
    picks = list(dict.fromkeys([best_map, best_r10, current]))
    for n in picks:
        s = results[n]["test+valid"]
        hit = (s.ranks <= 10).astype(float)
        lo, hi = bootstrap_ci(hit)
        alo, ahi = bootstrap_ci(s.tag_ap)
        diff = s.tag_ap - results[current]["test+valid"].tag_ap
        dlo, dhi = bootstrap_ci(diff)
        print(f"| {n} | {hit.mean():.3f} [{lo:.3f}, {hi:.3f}] | {s.tag_ap.mean():.3f} "
              f"[{alo:.3f}, {ahi:.3f}] | {diff.mean():+.3f} [{dlo:+.3f}, {dhi:+.3f}] |")  # fmt: skip
    r0 = rand["test+valid"][0]
    lo, hi = bootstrap_ci((r0.ranks <= 10).astype(float))
    alo, ahi = bootstrap_ci(r0.tag_ap)
    print(f"| random vectors (seed 0) | {(r0.ranks <= 10).mean():.3f} [{lo:.3f}, {hi:.3f}] | "
          f"{r0.tag_ap.mean():.3f} [{alo:.3f}, {ahi:.3f}] | |")  # fmt: skip

    # Selection: tag mAP first, but a gap whose paired 95% CI includes 0 is a tie, not a
    # disagreement; among the variants tied with the best tag mAP, the best caption R@10 wins.
    held_s = {n: r["test+valid"] for n, r in results.items()}
    tied = [n for n in order
            if bootstrap_ci(held_s[n].tag_ap - held_s[best_map].tag_ap)[1] >= 0]  # fmt: skip
    winner = max(tied, key=lambda n: (held_rows[n]["R@10"], held_rows[n]["tag mAP"]))
    print(f"\nbest tag mAP: {best_map}\nbest caption R@10: {best_r10}")
    print(f"{len(tied)} variants tie with the best tag mAP (paired 95% CI of the gap includes 0)")
    print(f"chosen (best R@10 among them): {winner}")
    print("\n| vs best tag mAP | tag mAP diff [95% CI] | R@10 diff [95% CI] |\n|---|---|---|")
    for n in dict.fromkeys([winner, best_r10, current]):
        d_ap = held_s[n].tag_ap - held_s[best_map].tag_ap
        d_r = (held_s[n].ranks <= 10).astype(float) - (held_s[best_map].ranks <= 10)
        (a, b), (c, d) = bootstrap_ci(d_ap), bootstrap_ci(d_r)
        print(f"| {n} | {d_ap.mean():+.3f} [{a:+.3f}, {b:+.3f}] | "
              f"{d_r.mean():+.3f} [{c:+.3f}, {d:+.3f}] |")  # fmt: skip

    print("\n## Per-tag AP of the chosen variant vs the current default (test+valid)\n")
    print("| tag | positives | chosen AP | current AP | random AP (mean) |")
    print("|---|---|---|---|---|")
    q = qs["test+valid"]
    rand_ap = np.mean([r.tag_ap for r in rand["test+valid"]], axis=0)
    for i, t in enumerate(q.tags):
        mark = " *" if t in known_tags else ""
        print(f"| {t}{mark} | {int(q.tag_relevant[i].sum())} | "
              f"{results[winner]['test+valid'].tag_ap[i]:.3f} | "
              f"{results[current]['test+valid'].tag_ap[i]:.3f} | {rand_ap[i]:.3f} |")  # fmt: skip

    # ---- unseen descriptions, over the whole corpus
    print(
        f"\n## Unseen descriptions (all {len(items)} tracks; positives = tracks with every "
        "listed tag)\n"
    )
    print("| description | rule | positives | chosen AP | current AP | random AP |")
    print("|---|---|---|---|---|---|")
    all_raw = [raw[it["id"]] for it in items]
    galleries, encoders = {}, {}
    for n in (winner, current):
        m = build_zero_shot_model(text_encoder=encoder, max_windows=8, **configs[n])
        galleries[n] = track_vectors(m, all_raw, merge, max_windows=8)
        encoders[n] = m
    rng = np.random.default_rng(0)
    for text, rule in DESCRIPTIONS:
        rel = np.array([all(t in it["tags"] for t in rule) for it in items])
        if rel.sum() == 0:
            print(f"| {text} | {' & '.join(rule)} | 0 | - | - | - |")
            continue
        aps = [average_precision(galleries[n] @ encoders[n].encode_text(text), rel)
               for n in (winner, current)]  # fmt: skip
        chance = np.mean([average_precision(rng.standard_normal(len(items)), rel)
                          for _ in range(200)])  # fmt: skip
        print(f"| {text} | {' & '.join(rule)} | {int(rel.sum())} | {aps[0]:.3f} | "
              f"{aps[1]:.3f} | {chance:.3f} |")  # fmt: skip

    # ---- window sampling
    print(f"\n## Window sampling, chosen variant (test+valid, {args.seconds:g}-s tracks)\n")
    print("\n".join(HEADER))
    model = encoders[winner]
    for limit in (4, 8, 16, None):
        gallery = track_vectors(model, [raw[it["id"]] for it in held], merge, max_windows=limit)
        s = evaluate(model.encode_text, gallery, qs["test+valid"], known_tags)
        print(fmt_row(f"max_windows={limit}", s.row()))
    full = track_vectors(model, all_raw, merge, max_windows=None)
    for limit in (4, 8, 16):
        cos = (track_vectors(model, all_raw, merge, max_windows=limit) * full).sum(axis=1)
        print(f"{args.seconds:g}-s tracks, max_windows={limit}: cosine to all-window vector "
              f"mean {cos.mean():.4f}, min {cos.min():.4f}")  # fmt: skip

    if args.long_tracks:
        long_folder, long_items = corpus(args.long_tracks, args.long_seconds, args.seed + 1)
        long_raw = window_confidences(bank, long_folder, long_items)
        lr = [long_raw[it["id"]] for it in long_items]
        lw = [len(w) for w in lr]
        print(
            f"\n## Window sampling on {len(lr)} long tracks ({args.long_seconds:g} s, "
            f"{min(lw)}-{max(lw)} windows): cosine of sampled to all-window track vector\n"
        )
        print("| variant | max_windows | mean cos | min cos | top-5 tag overlap |")
        print("|---|---|---|---|---|")
        for n in (winner, current):
            m = encoders[n]
            full = track_vectors(m, lr, merge, max_windows=None)
            top_full = [set(np.argsort(-(w @ merge.T).mean(0))[:5]) for w in lr]
            for limit in (4, 8, 16):
                cos = (track_vectors(m, lr, merge, max_windows=limit) * full).sum(axis=1)
                top = [set(np.argsort(-(w[select_windows(len(w), max_windows=limit)]
                                        @ merge.T).mean(0))[:5]) for w in lr]  # fmt: skip
                overlap = np.mean([len(a & b) / 5 for a, b in zip(top, top_full, strict=True)])
                print(f"| {n} | {limit} | {cos.mean():.4f} | {cos.min():.4f} | {overlap:.2f} |")
            within = [float((unit_rows(m.tag_scores_to_vectors(w @ merge.T)) @ f).mean())
                      for w, f in zip(lr, full, strict=True)]  # fmt: skip
            print(f"| {n} | (single window) | {np.mean(within):.4f} | {np.min(within):.4f} | |")

    print("\nchosen variant options:",
          {k: v for k, v in configs[winner].items() if k != "tag_prior"})  # fmt: skip


if __name__ == "__main__":
    main()
